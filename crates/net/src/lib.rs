//! den-net: user-mode networking.
