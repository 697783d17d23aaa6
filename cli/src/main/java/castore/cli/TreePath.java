package castore.cli;

import castore.ingest.posix.Display;
import castore.model.DirectoryNode;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.model.Node;
import castore.service.NotFoundException;
import castore.service.Store;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code ROOT[/PATH]}: a root name, then '/'-separated entry names, all raw bytes. Empty
 * components (doubled or trailing slashes) are ignored; "." and ".." are not names.
 */
record TreePath(Name root, List<Name> components) {

    static TreePath parse(byte[] text) {
        List<Name> names = new ArrayList<>();
        int start = 0;
        for (int i = 0; i <= text.length; i++) {
            if (i == text.length || text[i] == '/') {
                if (i > start) {
                    byte[] part = java.util.Arrays.copyOfRange(text, start, i);
                    names.add(Name.of(part));
                }
                start = i + 1;
            }
        }
        if (names.isEmpty()) {
            throw new InvalidDataException("invalid path '" + Display.escape(text) + "': expected ROOT or ROOT/PATH");
        }
        return new TreePath(names.getFirst(), List.copyOf(names.subList(1, names.size())));
    }

    /** The last name: the root's, or the last component's. */
    Name lastName() {
        return components.isEmpty() ? root : components.getLast();
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder(Display.escape(root.bytesUnsafe()));
        for (Name n : components) {
            s.append('/').append(Display.escape(n.bytesUnsafe()));
        }
        return s.toString();
    }

    /** Walks from the root through the store's directories to the node this path names. */
    Node resolve(Store store) throws IOException {
        Node node = store.roots().get(root)
                .orElseThrow(() -> new NotFoundException("no root named '" + Display.escape(root.bytesUnsafe()) + "'"));
        StringBuilder walked = new StringBuilder(Display.escape(root.bytesUnsafe()));
        for (Name name : components) {
            if (!(node instanceof DirectoryNode dir)) {
                String kind = Nodes.kind(node);
                throw new NotFoundException("not a directory: " + walked + " (it is " + (kind.startsWith("e") ? "an " : "a ") + kind + ")");
            }
            var directory = store.directories().get(dir.digest())
                    .orElseThrow(() -> new NotFoundException("directory " + dir.digest() + " (" + walked + ") is not in the store"));
            walked.append('/').append(Display.escape(name.bytesUnsafe()));
            node = directory.entries().get(name);
            if (node == null) {
                throw new NotFoundException("no such file or directory: " + walked);
            }
        }
        return node;
    }
}
