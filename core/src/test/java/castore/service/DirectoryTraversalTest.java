package castore.service;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.FileNode;
import castore.service.memory.MemoryDirectoryService;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The walk with gets ahead (S3's recursive get) gives what the plain depth-first walk gives, in
 * the same order, with at most the gets asked for running at once and a bounded number fetched
 * ahead of its consumer; a missing Directory fails it where the plain walk fails.
 */
class DirectoryTraversalTest {
    private final MemoryDirectoryService stored = new MemoryDirectoryService();
    private final AtomicInteger running = new AtomicInteger();
    private final AtomicInteger mostRunning = new AtomicInteger();
    private final AtomicInteger gets = new AtomicInteger();
    /** Directories the slow service answers as absent (the memory store refuses a dangling parent). */
    private final java.util.Set<B3Digest> lost = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** A service whose gets take a moment, as a round trip does, counting how many run at once. */
    private final DirectoryService slow = new ForwardingDirectoryService(stored) {
        @Override
        public Optional<Directory> get(B3Digest digest) throws IOException {
            gets.incrementAndGet();
            mostRunning.accumulateAndGet(running.incrementAndGet(), Math::max);
            try {
                Thread.sleep(2);
                return lost.contains(digest) ? Optional.empty() : inner.get(digest);
            } catch (InterruptedException e) {
                throw new java.io.InterruptedIOException();
            } finally {
                running.decrementAndGet();
            }
        }
    };

    private Directory leaf(String content) throws IOException {
        byte[] bytes = content.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        Directory d = Directory.builder().add("f", new FileNode(Blake3.digest(bytes), bytes.length, false)).build();
        stored.put(d);
        return d;
    }

    /** root -> d0..d4, each -> e0..e3, each -> three leaves; one shared subtree under d1/e2, d3 and d4/e0. */
    private Directory tree() throws IOException {
        Directory shared = Directory.builder().add("s", leaf("shared").toNode()).build();
        stored.put(shared);
        var root = Directory.builder();
        for (int i = 0; i < 5; i++) {
            var middle = Directory.builder();
            for (int j = 0; j < 4; j++) {
                var lower = Directory.builder();
                for (int k = 0; k < 3; k++) {
                    lower.add("l" + k, leaf(i + "/" + j + "/" + k).toNode());
                }
                if (i == 1 && j == 2 || i == 4 && j == 0) {
                    lower.add("shared", shared.toNode());
                }
                Directory built = lower.build();
                stored.put(built);
                middle.add("e" + j, built.toNode());
            }
            if (i == 3) {
                middle.add("shared", shared.toNode());
            }
            Directory built = middle.build();
            stored.put(built);
            root.add("d" + i, built.toNode());
        }
        Directory built = root.build();
        stored.put(built);
        return built;
    }

    @Test
    void givesWhatTheDepthFirstWalkGivesInItsOrderWithTheGetsAskedFor() throws IOException {
        Directory root = tree();
        List<Directory> plain;
        try (var walk = DirectoryTraversal.depthFirst(stored, root.digest())) {
            plain = walk.toList();
        }
        assertThat(plain).hasSize(1 + 5 + 20 + 60 + 2); // the shared subtree once
        for (int inFlight : new int[] {1, 3, 32}) {
            mostRunning.set(0);
            gets.set(0);
            try (var walk = DirectoryTraversal.depthFirstAhead(slow, root.digest(), inFlight)) {
                assertThat(walk.toList()).as("%d at once", inFlight).containsExactlyElementsOf(plain);
            }
            assertThat(gets).as("each Directory fetched once").hasValue(plain.size());
            // The one the consumer waits for may start past the bound, never more.
            assertThat(mostRunning.get()).as("%d at once", inFlight).isLessThanOrEqualTo(inFlight + 1);
        }
        assertThat(mostRunning.get()).as("gets ahead do run at once").isGreaterThan(3);
    }

    @Test
    void fetchesABoundedWindowAheadOfItsConsumer() throws Exception {
        Directory root = tree();
        try (var walk = DirectoryTraversal.depthFirstAhead(slow, root.digest(), 2)) {
            var it = walk.iterator();
            assertThat(it.next()).isEqualTo(root);
            Thread.sleep(300); // the gets ahead run until the window is full
            assertThat(gets.get()).isGreaterThan(4).isLessThanOrEqualTo(8 * 2 + 2);
        }
    }

    @Test
    void aMissingDirectoryFailsTheWalkWhereThePlainWalkFails() throws IOException {
        Directory present = leaf("present");
        Directory absent = Directory.builder().add("gone", leaf("gone").toNode()).build();
        stored.put(absent);
        lost.add(absent.digest());
        Directory root = Directory.builder().add("a", present.toNode()).add("b", absent.toNode()).add("c", leaf("after").toNode()).build();
        stored.put(root);
        for (int inFlight : new int[] {1, 8}) {
            List<Directory> got = new ArrayList<>();
            try (var walk = DirectoryTraversal.depthFirstAhead(slow, root.digest(), inFlight)) {
                assertThatThrownBy(() -> walk.forEach(got::add)).isInstanceOf(UncheckedIOException.class)
                        .hasCauseInstanceOf(NotFoundException.class).hasMessageContaining(absent.digest().toString());
            }
            assertThat(got).containsExactly(root, present);
        }
    }

    /** A get that ends in an Error (out of memory, say) fails the walk with it: its consumer never waits for good. */
    @Test
    void aGetThatEndsInAnErrorFailsTheWalkWithIt() throws IOException {
        Directory broken = Directory.builder().add("x", leaf("x").toNode()).build();
        stored.put(broken);
        Directory root = Directory.builder().add("a", leaf("a").toNode()).add("b", broken.toNode()).build();
        stored.put(root);
        DirectoryService failing = new ForwardingDirectoryService(stored) {
            @Override
            public Optional<Directory> get(B3Digest digest) throws IOException {
                if (digest.equals(broken.digest())) {
                    throw new AssertionError("no memory left for " + digest);
                }
                return inner.get(digest);
            }
        };
        for (int inFlight : new int[] {1, 8}) {
            List<Directory> got = new ArrayList<>();
            try (var walk = DirectoryTraversal.depthFirstAhead(failing, root.digest(), inFlight)) {
                org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(30), () ->
                        assertThatThrownBy(() -> walk.forEach(got::add)).isInstanceOf(AssertionError.class)
                                .hasMessage("no memory left for " + broken.digest()));
            }
            assertThat(got).hasSize(2).startsWith(root);
        }
    }
}
