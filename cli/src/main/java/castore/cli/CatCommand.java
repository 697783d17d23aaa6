package castore.cli;

import castore.ingest.posix.Display;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.SymlinkNode;
import castore.service.BlobReader;
import castore.service.CorruptedDataException;
import castore.service.NotFoundException;
import castore.service.Store;
import java.io.IOException;
import java.nio.ByteBuffer;
import picocli.CommandLine.Command;

@Command(name = "cat", description = "Write the contents of a file in the store to stdout. Every byte is verified "
        + "against its digest first: corrupted data is an error, never output.")
final class CatCommand extends NodeCommand {
    @Override
    void show(Store s, NodeSelector.Selected selected, Io io) throws IOException {
        String path = selected.display();
        switch (selected.node()) {
            case FileNode f -> copy(s, f, path, io);
            case DirectoryNode d -> throw new CliException(ExitCodes.INVALID, "cannot cat " + path + ": it is a directory");
            case SymlinkNode l -> throw new CliException(ExitCodes.INVALID,
                    "cannot cat " + path + ": it is a symlink to " + Display.escape(l.target().toByteArray()));
        }
    }

    private static void copy(Store s, FileNode file, String path, Io io) throws IOException {
        if (file.size() == 0) {
            return;
        }
        try (BlobReader reader = s.blobs().open(file.digest())
                .orElseThrow(() -> new NotFoundException("blob " + file.digest() + " (" + path + ") is not in the store"))) {
            ByteBuffer buffer = ByteBuffer.allocate(1 << 20);
            long position = 0;
            while (position < file.size()) {
                buffer.clear();
                int n = reader.read(position, buffer);
                if (n <= 0) {
                    throw new CorruptedDataException("blob " + file.digest() + " (" + path + ") ends at byte " + position
                            + " of " + file.size());
                }
                io.out().write(buffer.array(), 0, n);
                if (io.out().checkError()) {
                    return; // the reader went away or the disk is full: Main says which
                }
                position += n;
            }
        }
    }
}
