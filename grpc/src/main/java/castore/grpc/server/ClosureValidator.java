package castore.grpc.server;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.InvalidDataException;
import castore.model.Name;
import castore.service.ClosurePutter;
import castore.service.DirectoryService;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Buffers a Directory closure received leaves first and checks all of it before anything is
 * stored: each Directory valid; each child sent earlier in the stream or already stored, with the
 * size its node claims; the last Directory (the root) reaching every other one. A rejected
 * closure stores nothing. A part of a closure (DirectoryPartService.PutPart) is checked the same
 * way except that its last Directory need not reach the others.
 */
final class ClosureValidator {
    private final DirectoryService directories;
    private final long maxBytes;
    private final boolean part;
    private final ClosureBudget budget;
    /** Bytes taken from the budget, given back by {@link #release}. */
    private long taken;
    /** In arrival order (leaves first); a repeat keeps its first place. */
    private final Map<B3Digest, Received> received = new LinkedHashMap<>();
    private long bytes;
    private B3Digest last;

    /**
     * What is held of a Directory received until the closure is stored: its canonical encoding
     * (decoded again to store it), its size, and the digests of its child Directories. Holding
     * the decoded Directory took about 4.7 times its encoded size (a Name, a digest and a node
     * object per entry), and a daemon with a 256 MiB heap ran out of memory on a closure of a
     * quarter of the limit (DaemonProcessTest.aLargeClosureIsHeldAtAboutItsEncodedSize).
     */
    private record Received(byte[] encoded, long size, List<B3Digest> children) {
    }

    /** A whole closure (DirectoryService.Put). */
    ClosureValidator(DirectoryService directories, long maxBytes, ClosureBudget budget) {
        this(directories, maxBytes, false, budget);
    }

    ClosureValidator(DirectoryService directories, long maxBytes, boolean part, ClosureBudget budget) {
        this.directories = directories;
        this.maxBytes = maxBytes;
        this.part = part;
        this.budget = budget;
    }

    /** A closure larger than the daemon buffers. */
    static final class TooLarge extends RuntimeException {
        TooLarge(String message) {
            super(message);
        }
    }

    void add(castore.proto.Directory message) throws IOException {
        int encodedSize = message.getSerializedSize();
        bytes += encodedSize;
        if (bytes > maxBytes) {
            throw new TooLarge(part ? "Directory closure part larger than " + maxBytes + " bytes (PartLimit)"
                    : "Directory closure larger than " + maxBytes + " bytes; put it in parts (DirectoryPartService, or subtrees first)");
        }
        if (!budget.take(encodedSize)) {
            throw new TooLarge("the closures being checked would hold more than " + budget.limit()
                    + " bytes (three fifths of the daemon's heap); put it again later, or in smaller parts");
        }
        taken += encodedSize;
        Directory directory = Directory.fromProto(message);
        B3Digest digest = directory.digest();
        List<B3Digest> children = new ArrayList<>();
        for (int i = 0; i < directory.entryCount(); i++) {
            if (directory.node(i) instanceof DirectoryNode child) {
                Received r = received.get(child.digest());
                Name name = directory.name(i);
                long size = r != null ? r.size() : directories.get(child.digest()).map(Directory::size).orElseThrow(() -> new InvalidDataException(
                        "Directory " + digest + " refers to '" + name.display() + "' (" + child.digest()
                                + "), which was neither sent before it nor is stored"));
                if (size != child.size()) {
                    throw new InvalidDataException("Directory " + digest + " says '" + name.display() + "' (" + child.digest()
                            + ") has size " + child.size() + ", but it has size " + size);
                }
                children.add(child.digest());
            }
        }
        // A Directory sent twice is harmless (tvix allows omitting repeats; we allow repeating).
        received.putIfAbsent(digest, new Received(directory.encode(), directory.size(), List.copyOf(children)));
        last = digest;
    }

    /** Gives back what this closure took from the budget: once it is stored, refused or abandoned. */
    void release() {
        budget.give(taken);
        taken = 0;
        received.clear();
    }

    /**
     * Checks the root reaches everything (not for a part), stores the closure leaves first,
     * returns the root digest (the last Directory's).
     */
    B3Digest store() throws IOException {
        if (last == null) {
            throw new InvalidDataException(part ? "empty Directory closure part" : "empty Directory closure");
        }
        B3Digest root = last;
        if (!part) {
            checkReached(root);
        }
        // Arrival order is leaves first; the root goes last even if it was also sent earlier.
        try (ClosurePutter putter = directories.putClosure()) {
            for (var e : received.entrySet()) {
                if (!e.getKey().equals(root)) {
                    putter.put(Directory.decode(e.getValue().encoded()));
                }
            }
            putter.put(Directory.decode(received.get(root).encoded()));
            return putter.finish();
        }
    }

    private void checkReached(B3Digest root) {
        Set<B3Digest> reached = new HashSet<>();
        var queue = new ArrayDeque<B3Digest>();
        queue.add(root);
        reached.add(root);
        while (!queue.isEmpty()) {
            for (B3Digest child : received.get(queue.poll()).children()) {
                if (received.containsKey(child) && reached.add(child)) {
                    queue.add(child);
                }
            }
        }
        for (B3Digest d : received.keySet()) {
            if (!reached.contains(d)) {
                throw new InvalidDataException("Directory " + d + " is not reachable from the root " + root + " (the last Directory sent)");
            }
        }
    }
}
