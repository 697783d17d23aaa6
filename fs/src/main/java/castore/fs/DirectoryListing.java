package castore.fs;

import castore.model.Directory;
import castore.model.Name;
import castore.model.Node;
import java.util.Arrays;

/**
 * A loaded Directory as two arrays in name order: binary search for lookups, and positional
 * access for readdir, where the cookie is the position (so resuming a listing costs nothing).
 */
final class DirectoryListing {
    static final DirectoryListing EMPTY = new DirectoryListing(new Name[0], new Node[0]);

    private final Name[] names;
    private final Node[] nodes;

    private DirectoryListing(Name[] names, Node[] nodes) {
        this.names = names;
        this.nodes = nodes;
    }

    static DirectoryListing of(Directory directory) {
        int n = directory.entryCount();
        Name[] names = new Name[n];
        Node[] nodes = new Node[n];
        int i = 0;
        for (var e : directory.entries().entrySet()) {
            names[i] = e.getKey();
            nodes[i] = e.getValue();
            i++;
        }
        return new DirectoryListing(names, nodes);
    }

    int size() {
        return names.length;
    }

    Name name(int index) {
        return names[index];
    }

    Node node(int index) {
        return nodes[index];
    }

    /** The node named {@code name}, or null. */
    Node get(Name name) {
        int i = Arrays.binarySearch(names, name);
        return i >= 0 ? nodes[i] : null;
    }
}
