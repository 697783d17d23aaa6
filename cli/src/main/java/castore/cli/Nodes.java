package castore.cli;

import castore.ingest.posix.Display;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Name;
import castore.model.Node;
import castore.model.SymlinkNode;

/** How nodes are shown: one tab-separated line per node, names escaped (see {@link Display}). */
final class Nodes {
    private Nodes() {
    }

    static String kind(Node node) {
        return switch (node) {
            case DirectoryNode d -> "directory";
            case FileNode f -> f.executable() ? "executable" : "file";
            case SymlinkNode s -> "symlink";
        };
    }

    /** The digest, or for a symlink its target. */
    static String reference(Node node) {
        return switch (node) {
            case DirectoryNode d -> d.digest().toString();
            case FileNode f -> f.digest().toString();
            case SymlinkNode s -> Display.escape(s.target().toByteArray());
        };
    }

    /** Bytes for a file, target length for a symlink, tvix's size (entries below it) for a directory. */
    static long size(Node node) {
        return switch (node) {
            case DirectoryNode d -> d.size();
            case FileNode f -> f.size();
            case SymlinkNode s -> s.target().size();
        };
    }

    /** {@code NAME<TAB>KIND<TAB>DIGEST-or-TARGET<TAB>SIZE}. */
    static String row(Name name, Node node) {
        return Display.escape(name.bytesUnsafe()) + '\t' + kind(node) + '\t' + reference(node) + '\t' + size(node);
    }

    /** Human-readable byte count: "0 B", "1.5 KiB", "448.1 MiB". */
    static String bytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format("%.1f %s", v, units[u]);
    }
}
