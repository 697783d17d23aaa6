package castore.fuse.api;

/**
 * A lookup result ({@code fuse_entry_out}): the node id, its generation, attributes, and how
 * long the kernel may cache the name (entry) and the attributes, in nanoseconds. A node id of
 * 0 is a negative entry: the name does not exist, cached for {@code entryValidNanos}.
 */
public record Entry(long nodeId, long generation, Attr attr, long entryValidNanos, long attrValidNanos) {
    public static Entry negative(long validNanos) {
        return new Entry(0, 0, Attr.of(0, 0, 0, 0, 0, 0), validNanos, 0);
    }

    public boolean isNegative() {
        return nodeId == 0;
    }
}
