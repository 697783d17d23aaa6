package castore.model;

/** A regular file: the digest of its blob, its size and whether it is executable. */
public record FileNode(B3Digest digest, long size, boolean executable) implements Node {
    public FileNode {
        if (digest == null) {
            throw new InvalidDataException("file node without digest");
        }
        if (size < 0) {
            throw new InvalidDataException("file size out of range: " + Long.toUnsignedString(size));
        }
    }

    public castore.proto.FileNode toProto(Name name) {
        return castore.proto.FileNode.newBuilder()
                .setName(name.toByteString()).setDigest(digest.toByteString()).setSize(size)
                .setExecutable(executable).build();
    }

    @Override
    public castore.proto.Node toNodeProto(Name name) {
        return castore.proto.Node.newBuilder().setFile(toProto(name)).build();
    }

    // Written out: a record's generated equals/hashCode go through invokedynamic and method
    // handles, which cost microseconds per call until the JIT has compiled them (a fresh mount
    // hashes one node per directory entry). Same contract as the generated ones.
    @Override
    public boolean equals(Object o) {
        return o instanceof FileNode other && size == other.size && executable == other.executable
                && digest.equals(other.digest);
    }

    @Override
    public int hashCode() {
        return (31 * digest.hashCode() + Long.hashCode(size)) * 31 + Boolean.hashCode(executable);
    }

    static FileNode fromProto(castore.proto.FileNode p) {
        return new FileNode(B3Digest.of(p.getDigest()), p.getSize(), p.getExecutable());
    }
}
