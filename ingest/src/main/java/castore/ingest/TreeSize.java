package castore.ingest;

import static castore.ingest.posix.Posix.AT_FDCWD;

import castore.ingest.posix.DirectoryReader;
import castore.ingest.posix.Posix;
import java.io.IOException;
import java.util.ArrayDeque;

/**
 * Counts the regular files under a path and their bytes, for a progress display's totals. It
 * stats every entry, so it runs beside an import (on its own thread), never in its way; errors
 * are not reported here (the import reports them).
 */
public final class TreeSize {
    private TreeSize() {
    }

    public record Totals(long files, long bytes) {
    }

    public static Totals measure(byte[] path) {
        long files = 0;
        long bytes = 0;
        try (DirectoryReader reader = new DirectoryReader()) {
            ArrayDeque<byte[]> pending = new ArrayDeque<>();
            pending.push(path);
            while (!pending.isEmpty() && !Thread.currentThread().isInterrupted()) {
                byte[] p = pending.pop();
                Posix.Stat stat;
                try {
                    stat = Posix.lstatat(AT_FDCWD, p, p);
                } catch (IOException e) {
                    continue;
                }
                if (stat.isRegular()) {
                    files++;
                    bytes += stat.size();
                } else if (stat.isDirectory()) {
                    try {
                        int fd = Posix.openat(AT_FDCWD, p, Posix.O_RDONLY | Posix.O_DIRECTORY | Posix.O_NOFOLLOW | Posix.O_CLOEXEC, 0, p);
                        try {
                            for (DirectoryReader.Entry e : reader.list(fd, p)) {
                                pending.push(Posix.child(p, e.name()));
                            }
                        } finally {
                            Posix.close(fd);
                        }
                    } catch (IOException e) {
                        // the import will name this directory if it cannot read it either
                    }
                }
            }
        }
        return new Totals(files, bytes);
    }
}
