package castore.model;

/** A pointer to a Directory by digest, with its size (see {@link Directory#size()}). */
public record DirectoryNode(B3Digest digest, long size) implements Node {
    public DirectoryNode {
        if (digest == null) {
            throw new InvalidDataException("directory node without digest");
        }
        if (size < 0) {
            throw new InvalidDataException("directory size out of range: " + Long.toUnsignedString(size));
        }
    }

    public castore.proto.DirectoryNode toProto(Name name) {
        return castore.proto.DirectoryNode.newBuilder()
                .setName(name.toByteString()).setDigest(digest.toByteString()).setSize(size).build();
    }

    @Override
    public castore.proto.Node toNodeProto(Name name) {
        return castore.proto.Node.newBuilder().setDirectory(toProto(name)).build();
    }

    // Written out: a record's generated equals/hashCode go through invokedynamic and method
    // handles, which cost microseconds per call until the JIT has compiled them (a fresh mount
    // hashes one node per directory entry). Same contract as the generated ones.
    @Override
    public boolean equals(Object o) {
        return o instanceof DirectoryNode other && size == other.size && digest.equals(other.digest);
    }

    @Override
    public int hashCode() {
        return 31 * digest.hashCode() + Long.hashCode(size);
    }

    static DirectoryNode fromProto(castore.proto.DirectoryNode p) {
        return new DirectoryNode(B3Digest.of(p.getDigest()), p.getSize());
    }
}
