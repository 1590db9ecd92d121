"""Federation benchmark: replication lag of an import at a pole, serving at the national node."""
