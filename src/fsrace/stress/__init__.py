"""`fsrace stress`: the race classes against a real kernel on a real filesystem, with every
value read checked against the operations' real-time order."""
