package castore.ingest;

import castore.ingest.posix.Display;
import java.io.IOException;

/** A device, fifo or socket met during an import: castore stores only files, directories and symlinks. */
public final class SpecialFileException extends IOException {
    public SpecialFileException(byte[] path, String type) {
        super("cannot import " + Display.escape(path) + ": it is a " + type
                + " (only regular files, directories and symlinks can be imported)");
    }
}
