"""The national territorial reference: poles, regions, departments, arrondissements, communes."""
