//! den-image.
