package castore.cli;

import castore.ingest.posix.Display;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.ChunkMeta;
import castore.service.NotFoundException;
import castore.service.Store;
import java.io.IOException;
import java.io.PrintStream;
import java.util.List;
import picocli.CommandLine.Command;

@Command(name = "stat", description = "Show a node of the store: kind, size, digest; for a file its chunks "
        + "(digest and size each); for a symlink its target.")
final class StatCommand extends NodeCommand {
    @Override
    void show(Store s, NodeSelector.Selected selected, Io io) throws IOException {
        PrintStream out = io.out();
        Node node = selected.node();
        String path = selected.display();
        out.println("path: " + path);
        out.println("kind: " + Nodes.kind(node));
        switch (node) {
            case DirectoryNode d -> {
                var directory = s.directories().get(d.digest())
                        .orElseThrow(() -> new NotFoundException("directory " + d.digest() + " (" + path + ") is not in the store"));
                out.println("digest: " + d.digest());
                out.println("size: " + d.size());
                out.println("entries: " + directory.entries().size());
            }
            case FileNode f -> {
                List<ChunkMeta> chunks = s.blobs().chunks(f.digest())
                        .orElseThrow(() -> new NotFoundException("blob " + f.digest() + " (" + path + ") is not in the store"));
                out.println("digest: " + f.digest());
                out.println("size: " + f.size());
                out.println("executable: " + (f.executable() ? "yes" : "no"));
                out.println("chunks: " + chunks.size());
                for (ChunkMeta c : chunks) {
                    out.println("  " + c.digest() + "\t" + c.size());
                }
            }
            case SymlinkNode l -> {
                out.println("target: " + Display.escape(l.target().toByteArray()));
                out.println("size: " + l.target().size());
            }
        }
    }
}
