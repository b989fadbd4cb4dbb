"""streamproc: a stream-native alerting engine.

Data flows through the packages in this order::

    sources/  ->  decode/  ->  detectors/  ->  alerts.py (durable alert log)  ->  notify/

``runtime.py`` wires them together and owns the commit protocol.
"""

__version__ = "0.1.0"
