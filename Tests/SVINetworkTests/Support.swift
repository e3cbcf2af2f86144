@_exported import SVITestSupport
