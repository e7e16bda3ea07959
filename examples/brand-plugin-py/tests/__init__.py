"""Native tests of brand-plugin-py; run from its folder with `python3 -m unittest discover -s tests -t .`."""
