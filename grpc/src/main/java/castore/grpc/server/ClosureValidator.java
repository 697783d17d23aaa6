package castore.grpc.server;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.InvalidDataException;
import castore.service.ClosurePutter;
import castore.service.DirectoryService;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Buffers a Directory closure received leaves first and checks all of it before anything is
 * stored: each Directory valid; each child sent earlier in the stream or already stored, with the
 * size its node claims; the last Directory (the root) reaching every other one. A rejected
 * closure stores nothing.
 */
final class ClosureValidator {
    private final DirectoryService directories;
    private final long maxBytes;
    private final Map<B3Digest, Directory> received = new LinkedHashMap<>();
    private long bytes;
    private Directory last;

    ClosureValidator(DirectoryService directories, long maxBytes) {
        this.directories = directories;
        this.maxBytes = maxBytes;
    }

    /** A closure larger than the daemon buffers. */
    static final class TooLarge extends RuntimeException {
        TooLarge(String message) {
            super(message);
        }
    }

    void add(castore.proto.Directory message) throws IOException {
        bytes += message.getSerializedSize();
        if (bytes > maxBytes) {
            throw new TooLarge("Directory closure larger than " + maxBytes + " bytes; put it in parts (subtrees first)");
        }
        Directory directory = Directory.fromProto(message);
        B3Digest digest = directory.digest();
        for (var e : directory.entries().entrySet()) {
            if (e.getValue() instanceof DirectoryNode child) {
                long size = sizeOf(child.digest()).orElseThrow(() -> new InvalidDataException(
                        "Directory " + digest + " refers to '" + e.getKey() + "' (" + child.digest()
                                + "), which was neither sent before it nor is stored"));
                if (size != child.size()) {
                    throw new InvalidDataException("Directory " + digest + " says '" + e.getKey() + "' (" + child.digest()
                            + ") has size " + child.size() + ", but it has size " + size);
                }
            }
        }
        // A Directory sent twice is harmless (tvix allows omitting repeats; we allow repeating).
        received.putIfAbsent(digest, directory);
        last = directory;
    }

    private Optional<Long> sizeOf(B3Digest digest) throws IOException {
        Directory d = received.get(digest);
        if (d != null) {
            return Optional.of(d.size());
        }
        return directories.get(digest).map(Directory::size);
    }

    /** Checks the root reaches everything, stores the closure leaves first, returns the root digest. */
    B3Digest store() throws IOException {
        if (last == null) {
            throw new InvalidDataException("empty Directory closure");
        }
        B3Digest root = last.digest();
        Set<B3Digest> reached = new HashSet<>();
        var queue = new ArrayDeque<Directory>();
        queue.add(last);
        reached.add(root);
        while (!queue.isEmpty()) {
            for (var node : queue.poll().entries().values()) {
                if (node instanceof DirectoryNode child && received.containsKey(child.digest()) && reached.add(child.digest())) {
                    queue.add(received.get(child.digest()));
                }
            }
        }
        for (B3Digest d : received.keySet()) {
            if (!reached.contains(d)) {
                throw new InvalidDataException("Directory " + d + " is not reachable from the root " + root + " (the last Directory sent)");
            }
        }
        // Arrival order is leaves first; the root goes last even if it was also sent earlier.
        try (ClosurePutter putter = directories.putClosure()) {
            for (Directory d : received.values()) {
                if (!d.digest().equals(root)) {
                    putter.put(d);
                }
            }
            putter.put(last);
            return putter.finish();
        }
    }
}
