"""Pure functions: the math of every layer and loss, with no state.

Layers in :mod:`bnnet.nn` hold parameters and buffers and call these.
"""
