"""P2P client records in evidence: eMule/aMule, Gnutella clients and BitTorrent.

Each client format is a :class:`~hashwatch.scan.p2p.record.P2PArtifactReader`; the scan asks
the registry which reader recognises a file and turns each record into an item of the case.
"""
