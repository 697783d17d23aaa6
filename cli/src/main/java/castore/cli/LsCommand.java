package castore.cli;

import castore.ingest.posix.Display;
import castore.model.DirectoryNode;
import castore.model.Node;
import castore.service.NotFoundException;
import castore.service.Store;
import java.io.IOException;
import picocli.CommandLine.Command;

@Command(name = "ls", description = {
    "List a directory of the store: NAME<TAB>KIND<TAB>DIGEST-or-TARGET<TAB>SIZE per entry, in name order.",
    "For a file or symlink, its own line.",
})
final class LsCommand extends NodeCommand {
    @Override
    void show(Store s, NodeSelector.Selected selected, Io io) throws IOException {
        Node node = selected.node();
        if (node instanceof DirectoryNode dir) {
            var directory = s.directories().get(dir.digest()).orElseThrow(() ->
                    new NotFoundException("directory " + dir.digest() + " (" + selected.display() + ") is not in the store"));
            directory.entries().forEach((name, child) -> io.out().println(Nodes.row(name, child)));
        } else {
            String name = selected.path() != null ? Display.escape(selected.path().lastName().bytesUnsafe()) : selected.display();
            io.out().println(name + "\t" + Nodes.kind(node) + "\t" + Nodes.reference(node) + "\t" + Nodes.size(node));
        }
    }
}
