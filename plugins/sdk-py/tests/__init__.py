"""Native tests of the Python SDK (plugins/sdk-py); run from plugins/sdk-py with
`python3 -m unittest discover -s tests -t .`."""
