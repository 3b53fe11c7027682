"""asv benchmark suite of fastconv (see ``asv.conf.json`` at the repository root)."""
