package castore.fs;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.BlobService;
import castore.service.DirectoryService;
import castore.service.RootService;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/** Builds castore trees directly through the services, for tests. */
final class Trees {
    final BlobService blobs;
    final DirectoryService directories;
    final RootService roots;

    Trees(BlobService blobs, DirectoryService directories, RootService roots) {
        this.blobs = blobs;
        this.directories = directories;
        this.roots = roots;
    }

    FileNode file(String content) {
        return file(content.getBytes(StandardCharsets.UTF_8), false);
    }

    FileNode executable(String content) {
        return file(content.getBytes(StandardCharsets.UTF_8), true);
    }

    FileNode file(byte[] content, boolean executable) {
        try (var writer = blobs.create()) {
            writer.write(content, 0, content.length);
            B3Digest digest = writer.finish();
            return new FileNode(digest, content.length, executable);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static SymlinkNode link(String target) {
        return SymlinkNode.of(target);
    }

    /** A directory from alternating names and nodes; stored (children must be stored already). */
    DirectoryNode dir(Object... namesAndNodes) {
        Directory d = directory(namesAndNodes);
        try {
            directories.put(d);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return d.toNode();
    }

    /** A directory node whose Directory is not stored. */
    static DirectoryNode unstoredDir(Object... namesAndNodes) {
        return directory(namesAndNodes).toNode();
    }

    static Directory directory(Object... namesAndNodes) {
        var b = Directory.builder();
        for (int i = 0; i < namesAndNodes.length; i += 2) {
            b.add((String) namesAndNodes[i], (Node) namesAndNodes[i + 1]);
        }
        return b.build();
    }

    void root(String name, Node node) {
        try {
            roots.put(castore.model.Name.of(name), node);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
