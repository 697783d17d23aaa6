package castore.fuse.api;

/** Who asked: the caller's ids from the request header, and the request's unique id. */
public record Request(long unique, int uid, int gid, int pid) {
}
