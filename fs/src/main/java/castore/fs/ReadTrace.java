package castore.fs;

import castore.model.B3Digest;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.InvalidDataException;
import castore.model.Node;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;

/**
 * A read trace: the Directories and files a workload used on a mount, in the order it first used
 * them ({@code castore mount --record-trace}), for another mount to fetch ahead in that order
 * ({@code --prefetch-trace}): a program's start-up over a remote store then waits for its files'
 * round trips no more. Content-addressed, so a trace also serves later versions of a tree as far
 * as their content is the same; it names no paths, roots or stores.
 *
 * <p>Text, one entry per line after the header: {@code d b3:DIGEST SIZE} for a Directory,
 * {@code f b3:DIGEST SIZE} for a file's blob. Blank lines and lines starting with {@code #} are
 * ignored, so traces can be edited, concatenated and commented.
 */
public final class ReadTrace {
    public static final String HEADER = "castore-read-trace 1";

    private ReadTrace() {
    }

    /**
     * Reads a trace: its entries as nodes (DirectoryNode or FileNode, named by nothing), in order,
     * each once. Throws {@link InvalidDataException} naming the file and line of what is wrong.
     */
    public static List<Node> read(Path file) throws IOException {
        List<Node> entries = new ArrayList<>();
        Set<B3Digest> directories = new HashSet<>();
        Set<B3Digest> files = new HashSet<>();
        try (BufferedReader in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            String header = in.readLine();
            if (header == null || !header.equals(HEADER)) {
                throw new InvalidDataException(file + " is not a read trace: its first line is not '" + HEADER + "'");
            }
            int number = 1;
            for (String line = in.readLine(); line != null; line = in.readLine()) {
                number++;
                if (line.isBlank() || line.startsWith("#")) {
                    continue;
                }
                Node node = entry(line, file, number);
                if (node instanceof DirectoryNode d ? directories.add(d.digest()) : files.add(((FileNode) node).digest())) {
                    entries.add(node);
                }
            }
        } catch (java.nio.charset.MalformedInputException e) {
            throw new InvalidDataException(file + " is not a read trace: it is not UTF-8 text");
        }
        return entries;
    }

    private static Node entry(String line, Path file, int number) {
        String[] fields = line.trim().split(" +");
        if (fields.length != 3 || !(fields[0].equals("d") || fields[0].equals("f"))) {
            throw new InvalidDataException(file + " line " + number + ": expected 'd b3:DIGEST SIZE' or 'f b3:DIGEST SIZE'");
        }
        B3Digest digest;
        long size;
        try {
            digest = B3Digest.parse(fields[1]);
            size = Long.parseLong(fields[2]);
            if (size < 0) {
                throw new NumberFormatException();
            }
        } catch (InvalidDataException e) {
            throw new InvalidDataException(file + " line " + number + ": " + e.getMessage());
        } catch (NumberFormatException e) {
            String shown = (fields[2].length() > 40 ? fields[2].substring(0, 40) + "..." : fields[2]).replaceAll("\\p{Cntrl}", "?");
            throw new InvalidDataException(file + " line " + number + ": invalid size '" + shown + "'");
        }
        return fields[0].equals("d") ? new DirectoryNode(digest, size) : new FileNode(digest, size, false);
    }

    /**
     * Records a trace into {@code file} (created, or emptied): each Directory and file the first
     * time it is used. Appends go to a buffer that a virtual thread writes out every 200 ms, so
     * FUSE threads never wait for the disk; {@link #close} writes the rest.
     */
    public static Recorder record(Path file) throws IOException {
        return new Recorder(file);
    }

    /** Takes {@link FsOptions#accessed} events; see {@link #record}. */
    public static final class Recorder implements Consumer<Node>, AutoCloseable {
        private static final long FLUSH_MILLIS = 200;

        private final Path file;
        private final FileChannel channel;
        private final Set<B3Digest> directories = ConcurrentHashMap.newKeySet();
        private final Set<B3Digest> files = ConcurrentHashMap.newKeySet();
        private final StringBuilder pending = new StringBuilder();
        private final Thread flusher;
        private volatile boolean closed;
        private IOException failure; // the first write that failed; guarded by pending

        private Recorder(Path file) throws IOException {
            this.file = file;
            this.channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING);
            try {
                write(HEADER + "\n");
            } catch (IOException e) {
                channel.close();
                throw e;
            }
            this.flusher = Thread.ofVirtual().name("castore-trace-writer").start(this::flushPeriodically);
        }

        @Override
        public void accept(Node node) {
            // instanceof, not a pattern switch: its call site would be linked on a FUSE thread's first use.
            String entry = null;
            if (node instanceof DirectoryNode d && directories.add(d.digest())) {
                entry = "d " + d.digest() + " " + d.size() + "\n";
            } else if (node instanceof FileNode f && files.add(f.digest())) {
                entry = "f " + f.digest() + " " + f.size() + "\n";
            }
            if (entry != null) {
                synchronized (pending) {
                    pending.append(entry);
                }
            }
        }

        /** How many entries were recorded. */
        public int size() {
            return directories.size() + files.size();
        }

        private void flushPeriodically() {
            while (!closed) {
                try {
                    Thread.sleep(FLUSH_MILLIS);
                } catch (InterruptedException e) {
                    return; // close flushes
                }
                flush();
            }
        }

        private void flush() {
            synchronized (pending) {
                if (pending.isEmpty() || failure != null) {
                    return;
                }
                try {
                    write(pending.toString());
                } catch (IOException e) {
                    failure = e;
                }
                pending.setLength(0);
            }
        }

        private void write(String text) throws IOException {
            ByteBuffer bytes = ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8));
            while (bytes.hasRemaining()) {
                channel.write(bytes);
            }
        }

        /** Writes what is pending and closes the file; throws if any write failed (the trace is incomplete). */
        @Override
        public void close() throws IOException {
            closed = true;
            flusher.interrupt();
            try {
                flusher.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            flush();
            channel.close();
            synchronized (pending) {
                if (failure != null) {
                    throw new IOException("cannot write the read trace " + file + ": " + failure.getMessage(), failure);
                }
            }
        }
    }
}
