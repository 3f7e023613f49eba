//! HCS schema v2 documents. STUB — being written.
