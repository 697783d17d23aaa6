package castore.model;

/**
 * A node of a castore tree, without its name: names come from the Directory holding the node
 * or from the root catalog. Nodes are values: equal nodes denote identical content.
 */
public sealed interface Node permits DirectoryNode, FileNode, SymlinkNode {

    /** The proto {@code Node} form with {@code name} attached. */
    castore.proto.Node toNodeProto(Name name);

    /** Decodes and validates a proto Node; returns its name and node. */
    static NamedNode fromProto(castore.proto.Node proto) {
        return switch (proto.getNodeCase()) {
            case DIRECTORY -> new NamedNode(Name.of(proto.getDirectory().getName()), DirectoryNode.fromProto(proto.getDirectory()));
            case FILE -> new NamedNode(Name.of(proto.getFile().getName()), FileNode.fromProto(proto.getFile()));
            case SYMLINK -> new NamedNode(Name.of(proto.getSymlink().getName()), SymlinkNode.fromProto(proto.getSymlink()));
            case NODE_NOT_SET -> throw new InvalidDataException("node has no kind set");
        };
    }

    /** A node with its name, as in a Directory listing or the root catalog. */
    record NamedNode(Name name, Node node) {
    }
}
