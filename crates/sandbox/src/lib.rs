//! den-sandbox.
