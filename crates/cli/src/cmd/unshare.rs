//! `den unshare CMD`: run a host command inside den's user namespace.
