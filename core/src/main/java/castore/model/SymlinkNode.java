package castore.model;

import com.google.protobuf.ByteString;
import java.nio.charset.StandardCharsets;

/** A symbolic link: its target, 1 to 4095 bytes without NUL. */
public record SymlinkNode(ByteString target) implements Node {
    public static final int MAX_TARGET_LENGTH = 4095;

    public SymlinkNode {
        if (target == null || target.isEmpty()) {
            throw new InvalidDataException("symlink with empty target");
        }
        if (target.size() > MAX_TARGET_LENGTH) {
            throw new InvalidDataException("symlink target longer than " + MAX_TARGET_LENGTH + " bytes");
        }
        if (containsNul(target)) {
            throw new InvalidDataException("symlink target '" + Name.display(target.toByteArray()) + "' contains a NUL byte");
        }
    }

    private static boolean containsNul(ByteString s) {
        for (int i = 0; i < s.size(); i++) {
            if (s.byteAt(i) == 0) {
                return true;
            }
        }
        return false;
    }

    public static SymlinkNode of(byte[] target) {
        return new SymlinkNode(ByteString.copyFrom(target));
    }

    public static SymlinkNode of(String target) {
        return new SymlinkNode(ByteString.copyFrom(target, StandardCharsets.UTF_8));
    }

    public castore.proto.SymlinkNode toProto(Name name) {
        return castore.proto.SymlinkNode.newBuilder().setName(name.toByteString()).setTarget(target).build();
    }

    @Override
    public castore.proto.Node toNodeProto(Name name) {
        return castore.proto.Node.newBuilder().setSymlink(toProto(name)).build();
    }

    // Written out: a record's generated equals/hashCode go through invokedynamic and method
    // handles, which cost microseconds per call until the JIT has compiled them (a fresh mount
    // hashes one node per directory entry). Same contract as the generated ones.
    @Override
    public boolean equals(Object o) {
        return o instanceof SymlinkNode other && target.equals(other.target);
    }

    @Override
    public int hashCode() {
        return target.hashCode();
    }

    static SymlinkNode fromProto(castore.proto.SymlinkNode p) {
        return new SymlinkNode(p.getTarget());
    }
}
