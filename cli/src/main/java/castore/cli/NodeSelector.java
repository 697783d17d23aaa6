package castore.cli;

import castore.model.B3Digest;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Node;
import castore.service.BlobReader;
import castore.service.NotFoundException;
import castore.service.Store;
import java.io.IOException;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * What ls, cat and stat look at: {@code ROOT[/PATH]}, or an object by digest with --blob or
 * --directory (handy for objects verify reports). Digests are {@code b3:<base64>} or 64 hex digits.
 */
final class NodeSelector {
    @Parameters(arity = "0..1", paramLabel = "ROOT[/PATH]", description = "A root name, then '/'-separated names below it.")
    String path;

    @Option(names = "--blob", paramLabel = "DIGEST", description = "The blob with this digest instead of a path.")
    String blob;

    @Option(names = "--directory", paramLabel = "DIGEST", description = "The Directory with this digest instead of a path.")
    String directory;

    /** The node selected and how to name it in messages. */
    record Selected(Node node, TreePath path, String display) {
    }

    /**
     * Checks the arguments alone, before the command opens its store: a usage error or a bad
     * name or digest is reported as such, not as whatever the store's opening says first.
     */
    void check(Io io) {
        int given = (path != null ? 1 : 0) + (blob != null ? 1 : 0) + (directory != null ? 1 : 0);
        if (given != 1) {
            throw new CliException(ExitCodes.USAGE, "give exactly one of ROOT[/PATH], --blob DIGEST, --directory DIGEST");
        }
        if (path != null) {
            TreePath.parse(io.bytes(path));
        } else {
            B3Digest.parse(blob != null ? blob : directory);
        }
    }

    Selected resolve(Store store, Io io) throws IOException {
        check(io);
        if (path != null) {
            TreePath p = TreePath.parse(io.bytes(path));
            return new Selected(p.resolve(store), p, p.toString());
        }
        if (blob != null) {
            B3Digest digest = B3Digest.parse(blob);
            long size;
            try (BlobReader reader = store.blobs().open(digest)
                    .orElseThrow(() -> new NotFoundException("blob " + digest + " is not in the store"))) {
                size = reader.size();
            }
            return new Selected(new FileNode(digest, size, false), null, digest.toString());
        }
        B3Digest digest = B3Digest.parse(directory);
        var d = store.directories().get(digest)
                .orElseThrow(() -> new NotFoundException("directory " + digest + " is not in the store"));
        return new Selected(new DirectoryNode(digest, d.size()), null, digest.toString());
    }
}
