package castore.fuse.api;

/** Attributes and how long the kernel may cache them, in nanoseconds. */
public record AttrReply(Attr attr, long validNanos) {
}
