"""What a split's or a merge's NICAD lookup costs in a national registry (``make bench-lookup``)."""
