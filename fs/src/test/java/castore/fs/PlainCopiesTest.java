package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.fuse.testing.Commands;
import castore.fuse.testing.FuseAvailability;
import castore.hash.Blake3;
import castore.io.Libc;
import castore.io.LibcPriorityTest;
import castore.model.B3Digest;
import castore.service.BlobService;
import castore.service.CorruptedDataException;
import castore.service.Store;
import castore.service.StoreOptions;
import castore.service.Stores;
import castore.service.memory.MemoryBlobService;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Plain copies on a real directory: made whole, read back through their descriptors, evicted, refused, cleaned. */
class PlainCopiesTest {
    static final Duration IDLE = Duration.ofSeconds(60);
    static final int SMALL = 64 << 10;

    @TempDir
    Path tmp;

    /** Reads end at each MiB, as the maker's pieces do. */
    final InstrumentedBlobService blobs = new InstrumentedBlobService(new MemoryBlobService(), 1 << 20);
    final List<String> problems = new CopyOnWriteArrayList<>();

    Path copiesDir() {
        return tmp.resolve("copies");
    }

    PlainCopies open(long minBytes, long maxBytes) throws IOException {
        return PlainCopies.open(copiesDir(), blobs, minBytes, maxBytes, problems::add);
    }

    static byte[] content(int size, int seed) {
        byte[] data = new byte[size];
        new SplittableRandom(seed).nextBytes(data);
        return data;
    }

    static B3Digest put(BlobService service, byte[] data) {
        return new Trees(service, null, null).file(data, false).digest();
    }

    B3Digest put(byte[] data) {
        return put(blobs, data);
    }

    /** Stores {@code count} blobs of SMALL bytes from seeds {@code seed, seed + 1, ...}; their bytes are added to {@code data}. */
    List<B3Digest> putSmall(int count, int seed, List<byte[]> data) {
        List<B3Digest> digests = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            data.add(content(SMALL, seed + i));
            digests.add(put(data.getLast()));
        }
        return digests;
    }

    /** Everything readable through {@code fd}, read with pread; at most {@code limit} bytes. */
    static byte[] readFd(int fd, long limit) throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(limit);
            long n = Libc.transfer(fd, false, buffer, 0, Path.of("/proc/self/fd/" + fd));
            return buffer.asSlice(0, n).toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** Opens the copy, reads it whole through the descriptor and closes it. */
    static byte[] readCopy(PlainCopies copies, B3Digest digest, long size) throws IOException {
        int fd = copies.open(digest, size);
        assertThat(fd).as("descriptor of the copy").isGreaterThanOrEqualTo(0);
        try {
            return readFd(fd, size + 1);
        } finally {
            Libc.close(fd);
        }
    }

    static List<Path> filesUnder(Path dir) throws IOException {
        try (Stream<Path> walk = Files.walk(dir)) {
            return walk.filter(Files::isRegularFile).toList();
        }
    }

    void made(PlainCopies copies, B3Digest digest, long size) throws InterruptedException {
        copies.request(digest, size);
        assertThat(copies.awaitIdle(IDLE)).isTrue();
        assertThat(Files.isRegularFile(copies.pathOf(digest))).as("copy of " + digest).isTrue();
    }

    @Test
    void aRequestedCopyOfALocalStoreBlobHasItsBytesIsReadOnlyAndOpensAsADescriptor() throws Exception {
        byte[] data = content((3 << 20) + 12_345, 1);
        try (Store store = Stores.open(tmp.resolve("store").toString(), StoreOptions.DEFAULT);
             PlainCopies copies = PlainCopies.open(copiesDir(), store.blobs(), 1, 1L << 30, problems::add)) {
            B3Digest digest = put(store.blobs(), data);
            assertThat(copies.open(digest, data.length)).as("no copy yet").isEqualTo(-1);

            copies.request(digest, data.length);
            assertThat(copies.awaitIdle(IDLE)).isTrue();

            Path copy = copiesDir().resolve(digest.toHex().substring(0, 2)).resolve(digest.toHex());
            assertThat(copies.pathOf(digest)).isEqualTo(copy);
            assertThat(Files.readAllBytes(copy)).isEqualTo(data);
            assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(copy))).isEqualTo("r--r--r--");
            assertThat(copies.count()).isEqualTo(1);
            assertThat(copies.bytes()).isEqualTo(data.length);
            assertThat(readCopy(copies, digest, data.length)).isEqualTo(data);
            assertThat(Files.isRegularFile(copiesDir().resolve(PlainCopies.MARKER))).isTrue();
            try (Stream<Path> left = Files.list(copiesDir().resolve(PlainCopies.TMP))) {
                assertThat(left).as("tmp/ after the copy").isEmpty();
            }
            assertThat(problems).isEmpty();
        }
    }

    @Test
    void blobsBelowMinBytesOrAboveTheBudgetAreNeverCopied() throws Exception {
        byte[] small = content(999, 2);
        byte[] big = content(5000, 3);
        byte[] fits = content(1000, 4);
        B3Digest smallDigest = put(small), bigDigest = put(big), fitsDigest = put(fits);
        try (PlainCopies copies = open(1000, 4999)) {
            assertThat(copies.minBytes()).isEqualTo(1000);
            copies.request(smallDigest, small.length);
            copies.request(bigDigest, big.length);
            copies.request(fitsDigest, fits.length);
            assertThat(copies.awaitIdle(IDLE)).isTrue();
            assertThat(blobs.opens(smallDigest)).isZero();
            assertThat(blobs.opens(bigDigest)).isZero();
            assertThat(copies.open(smallDigest, small.length)).isEqualTo(-1);
            assertThat(copies.open(bigDigest, big.length)).isEqualTo(-1);
            assertThat(readCopy(copies, fitsDigest, fits.length)).isEqualTo(fits);
            assertThat(copies.count()).isEqualTo(1);
        }
    }

    @Test
    void afterStopRequestsNothingMoreIsCopiedButCopiesMadeStillOpen() throws Exception {
        byte[] before = content(SMALL, 21);
        byte[] after = content(SMALL, 22);
        B3Digest beforeDigest = put(before), afterDigest = put(after);
        try (PlainCopies copies = open(1, 1 << 30)) {
            copies.request(beforeDigest, before.length);
            assertThat(copies.awaitIdle(IDLE)).isTrue();
            assertThat(copies.acceptsRequests()).isTrue();
            copies.stopRequests();
            assertThat(copies.acceptsRequests()).isFalse();
            copies.request(afterDigest, after.length);
            assertThat(copies.awaitIdle(IDLE)).isTrue();
            assertThat(blobs.opens(afterDigest)).isZero();
            assertThat(copies.count()).isEqualTo(1);
            assertThat(readCopy(copies, beforeDigest, before.length)).isEqualTo(before);
        }
    }

    @Test
    void requestsRepeatedWhileQueuedOrAfterTheCopyExistsMakeOneCopy() throws Exception {
        byte[] first = content(SMALL, 5);
        byte[] second = content(SMALL, 6);
        B3Digest firstDigest = put(first), secondDigest = put(second);
        var inFirst = new CountDownLatch(1);
        var release = new CountDownLatch(1);
        blobs.beforeRead = (digest, position) -> {
            if (digest.equals(firstDigest)) {
                inFirst.countDown();
                await(release);
            }
        };
        try (PlainCopies copies = open(1, 1 << 20)) {
            copies.request(firstDigest, first.length);
            assertThat(inFirst.await(60, TimeUnit.SECONDS)).isTrue();
            // The maker is held inside the first copy: these stay queued.
            copies.request(firstDigest, first.length);
            for (int i = 0; i < 5; i++) {
                copies.request(secondDigest, second.length);
            }
            assertThat(copies.awaitIdle(Duration.ZERO)).as("busy while held").isFalse();
            release.countDown();
            assertThat(copies.awaitIdle(IDLE)).isTrue();
            copies.request(secondDigest, second.length);
            assertThat(copies.awaitIdle(IDLE)).isTrue();

            assertThat(blobs.opens(firstDigest)).isEqualTo(1);
            assertThat(blobs.opens(secondDigest)).isEqualTo(1);
            assertThat(copies.count()).isEqualTo(2);
            assertThat(readCopy(copies, secondDigest, second.length)).isEqualTo(second);
        }
    }

    @Test
    void openDeletesACopyOfTheWrongLength() throws Exception {
        byte[] data = content(SMALL, 7);
        B3Digest digest = put(data);
        try (PlainCopies copies = open(1, 1 << 20)) {
            made(copies, digest, data.length);
        }
        Path copy;
        try (PlainCopies copies = open(1, 1 << 20)) {
            copy = copies.pathOf(digest);
            Files.delete(copy);
            Files.write(copy, new byte[data.length - 1]); // a truncated copy, as from another tool
        }
        try (PlainCopies copies = open(1, 1 << 20)) {
            assertThat(copies.count()).isEqualTo(1);
            assertThat(copies.open(digest, data.length)).isEqualTo(-1);
            assertThat(copy).doesNotExist();
            assertThat(copies.count()).isZero();
            assertThat(copies.bytes()).isZero();

            // A good copy asked for with a size that is not its own goes the same way.
            made(copies, digest, data.length);
            assertThat(copies.open(digest, data.length + 1L)).isEqualTo(-1);
            assertThat(copy).doesNotExist();
            assertThat(copies.count()).isZero();
            made(copies, digest, data.length);
            assertThat(readCopy(copies, digest, data.length)).isEqualTo(data);
        }
    }

    @Test
    void evictionStaysWithinTheBudgetAndDeletesTheLeastRecentlyOpenedFirst() throws Exception {
        List<byte[]> data = new ArrayList<>();
        List<B3Digest> digests = putSmall(5, 10, data);
        B3Digest a = digests.get(0), b = digests.get(1), c = digests.get(2), d = digests.get(3), e = digests.get(4);
        long budget = 3L * SMALL + SMALL / 2;
        try (PlainCopies copies = open(1, budget)) {
            made(copies, a, SMALL);
            made(copies, b, SMALL);
            made(copies, c, SMALL);
            int heldA = copies.open(a, SMALL); // order now b, c, a
            assertThat(heldA).isGreaterThanOrEqualTo(0);
            try {
                made(copies, d, SMALL);
                assertThat(copies.pathOf(b)).as("least recently used").doesNotExist();
                assertThat(copies.bytes()).isEqualTo(3L * SMALL).isLessThanOrEqualTo(budget);
                assertThat(copies.count()).isEqualTo(3);

                Libc.close(copies.open(c, SMALL)); // order now a, d, c
                made(copies, e, SMALL);
                assertThat(copies.pathOf(a)).doesNotExist();
                assertThat(copies.open(a, SMALL)).isEqualTo(-1);
                assertThat(readFd(heldA, SMALL + 1)).as("a descriptor outlives the eviction of its copy").isEqualTo(data.get(0));
            } finally {
                Libc.close(heldA);
            }
            for (B3Digest kept : List.of(c, d, e)) {
                assertThat(copies.pathOf(kept)).exists();
            }
            assertThat(copies.bytes()).isEqualTo(3L * SMALL);
            assertThat(filesUnder(copiesDir()).stream().filter(p -> !p.getFileName().toString().equals(PlainCopies.MARKER)))
                    .hasSize(3);
        }
    }

    @Test
    void aMissingBlobIsReportedOnceAndLaterRequestsStillWork() throws Exception {
        B3Digest missing = Blake3.digest(new byte[] {1, 2, 3});
        byte[] data = content(SMALL, 20);
        B3Digest present = put(data);
        try (PlainCopies copies = open(1, 1 << 20)) {
            for (int i = 0; i < 3; i++) {
                copies.request(missing, SMALL);
                assertThat(copies.awaitIdle(IDLE)).isTrue();
            }
            assertThat(problems).hasSize(1);
            assertThat(problems.getFirst()).contains(missing.toString()).contains("not found").doesNotContain("\n");
            assertThat(copies.open(missing, SMALL)).isEqualTo(-1);

            made(copies, present, data.length);
            assertThat(readCopy(copies, present, data.length)).isEqualTo(data);
            assertThat(problems).hasSize(1);
        }
    }

    @Test
    void aReadErrorOrAWrongSizeDropsTheRequestAndLeavesNoTemporaryFile() throws Exception {
        byte[] corrupt = content((2 << 20) + 1, 21);
        byte[] data = content(SMALL, 22);
        B3Digest corruptDigest = put(corrupt), digest = put(data);
        blobs.beforeRead = (d, position) -> {
            if (d.equals(corruptDigest) && position > 0) {
                throw new CorruptedDataException("chunk of " + d + " does not match its digest");
            }
        };
        try (PlainCopies copies = open(1, 1 << 30)) {
            copies.request(corruptDigest, corrupt.length);
            copies.request(digest, data.length + 5L);
            assertThat(copies.awaitIdle(IDLE)).isTrue();
            assertThat(problems).hasSize(2);
            assertThat(problems).anySatisfy(line -> assertThat(line).contains(corruptDigest.toString()).contains("does not match"));
            assertThat(problems).anySatisfy(line -> assertThat(line).contains(digest.toString()).contains(data.length + " bytes"));
            assertThat(copies.count()).isZero();
            assertThat(filesUnder(copiesDir())).containsExactly(copiesDir().resolve(PlainCopies.MARKER));

            made(copies, digest, data.length);
            assertThat(copies.count()).isEqualTo(1);
        }
    }

    @Test
    void aNonEmptyDirectoryWithoutTheMarkerIsRefusedAndLeftAlone() throws Exception {
        Path dir = Files.createDirectories(copiesDir());
        String hex = Blake3.digest(new byte[] {9}).toHex();
        Path precious = Files.writeString(dir.resolve("thesis.tex"), "years of work");
        Path digestNamed = Files.writeString(Files.createDirectories(dir.resolve(hex.substring(0, 2))).resolve(hex), "x");
        Path inTmp = Files.writeString(Files.createDirectories(dir.resolve("tmp")).resolve("draft"), "y");

        assertThatThrownBy(() -> open(1, 1 << 20))
                .isInstanceOf(IOException.class)
                .hasMessage(dir + " is not a castore plain-copies directory");

        assertThat(precious).hasContent("years of work");
        assertThat(digestNamed).hasContent("x");
        assertThat(inTmp).hasContent("y");
        assertThat(filesUnder(dir)).containsExactlyInAnyOrder(precious, digestNamed, inTmp);
        try (Stream<Path> top = Files.list(dir)) {
            assertThat(top).hasSize(3);
        }
    }

    @Test
    void anEmptyOrMissingDirectoryIsMarkedAndUsed() throws Exception {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        try (PlainCopies copies = PlainCopies.open(empty, blobs, 1, 100, problems::add)) {
            assertThat(empty.resolve(PlainCopies.MARKER)).isRegularFile();
        }
        Path missing = tmp.resolve("a/b/c");
        try (PlainCopies copies = PlainCopies.open(missing, blobs, 1, 100, problems::add)) {
            assertThat(missing.resolve(PlainCopies.MARKER)).isRegularFile();
            assertThat(missing.resolve(PlainCopies.TMP)).isDirectory();
        }
    }

    @Test
    void aDirectoryIsUsedByOneInstanceAtATime() throws Exception {
        try (PlainCopies copies = open(1, 100)) {
            assertThatThrownBy(() -> open(1, 100))
                    .isInstanceOf(IOException.class)
                    .hasMessage(copiesDir() + " is in use by another castore process");
        }
        open(1, 100).close(); // free again
    }

    @Test
    void verifyHashesAsManyCopiesAtOnceAsItHasThreads() throws Exception {
        byte[] first = content(2 * SMALL, 31);
        byte[] second = content(2 * SMALL, 32);
        B3Digest firstDigest = put(first);
        B3Digest secondDigest = put(second);
        try (PlainCopies copies = open(1, 1 << 20)) {
            made(copies, firstDigest, first.length);
            made(copies, secondDigest, second.length);
            for (B3Digest digest : List.of(firstDigest, secondDigest)) {
                Path copy = copies.pathOf(digest);
                Files.setPosixFilePermissions(copy, PosixFilePermissions.fromString("rw-r--r--"));
                Files.write(copy, new byte[2 * SMALL]); // same length, other bytes
            }
        }
        // Each report waits for the other: only two copies checked at once get past it.
        var bothBad = new java.util.concurrent.CyclicBarrier(2);
        List<String> found = java.util.Collections.synchronizedList(new ArrayList<>());
        PlainCopies.Verification v = PlainCopies.verify(copiesDir(), 2, line -> {
            try {
                bothBad.await(10, java.util.concurrent.TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new AssertionError("the copies were not checked at the same time", e);
            }
            found.add(line);
        });
        assertThat(v).isEqualTo(new PlainCopies.Verification(2, first.length + second.length, 2));
        assertThat(found).hasSize(2).allSatisfy(line -> assertThat(line).endsWith(", not to its name: deleted"));
    }

    @Test
    void verifyDeletesCopiesThatDoNotHashToTheirNameWhileTheDirectoryIsInUse() throws Exception {
        byte[] good = content(3 * SMALL + 5, 21);
        byte[] spoiled = content(2 * SMALL, 22);
        B3Digest goodDigest = put(good);
        B3Digest spoiledDigest = put(spoiled);
        List<String> found = new ArrayList<>();
        try (PlainCopies copies = open(1, 1 << 20)) {
            made(copies, goodDigest, good.length);
            made(copies, spoiledDigest, spoiled.length);
            Path tmpLeftover = Files.write(copiesDir().resolve(PlainCopies.TMP).resolve(spoiledDigest.toHex()), new byte[10]);
            Path stranger = Files.writeString(Files.createDirectories(copiesDir().resolve("ab")).resolve("notes.txt"), "mine");

            PlainCopies.Verification clean = PlainCopies.verify(copiesDir(), 1, found::add);
            assertThat(clean).isEqualTo(new PlainCopies.Verification(2, good.length + spoiled.length, 0));
            assertThat(found).isEmpty();

            // Same length, other bytes: open's length check cannot see it.
            Path bad = copies.pathOf(spoiledDigest);
            Files.setPosixFilePermissions(bad, PosixFilePermissions.fromString("rw-r--r--"));
            byte[] changed = spoiled.clone();
            changed[SMALL] ^= 1;
            Files.write(bad, changed);

            PlainCopies.Verification v = PlainCopies.verify(copiesDir(), 1, found::add);
            assertThat(v).isEqualTo(new PlainCopies.Verification(2, good.length + spoiled.length, 1));
            assertThat(found).singleElement().asString()
                    .isEqualTo("plain copy " + bad + " hashes to " + Blake3.digest(changed) + ", not to its name: deleted");
            assertThat(bad).doesNotExist();
            assertThat(readCopy(copies, goodDigest, good.length)).isEqualTo(good);
            assertThat(tmpLeftover).as("tmp/ is the maker's").exists();
            assertThat(stranger).hasContent("mine");

            // The instance using the directory forgets the deleted copy at its next open and makes it again.
            assertThat(copies.open(spoiledDigest, spoiled.length)).isEqualTo(-1);
            made(copies, spoiledDigest, spoiled.length);
            assertThat(readCopy(copies, spoiledDigest, spoiled.length)).isEqualTo(spoiled);
        }
        assertThat(PlainCopies.verify(copiesDir(), 1, found::add)).isEqualTo(new PlainCopies.Verification(2, good.length + spoiled.length, 0));
    }

    @Test
    void verifySkipsCopiesDeletedBetweenListingThemAndLookingAtThem() throws Exception {
        open(1, 1 << 20).close();
        Path fan = Files.createDirectories(copiesDir().resolve("ab"));
        List<Path> names = new ArrayList<>();
        for (int i = 0; i < 2000; i++) {
            names.add(fan.resolve(String.format("ab%062x", i)));
        }
        // Stands in for a mount evicting copies (and making them again) while verify runs.
        var stop = new java.util.concurrent.atomic.AtomicBoolean();
        List<Throwable> churnFailed = new CopyOnWriteArrayList<>();
        Thread churn = Thread.ofPlatform().start(() -> {
            try {
                while (!stop.get()) {
                    for (Path name : names) {
                        Files.deleteIfExists(name);
                    }
                    for (Path name : names) {
                        Files.write(name, new byte[0]);
                    }
                }
            } catch (IOException | RuntimeException e) {
                churnFailed.add(e);
            }
        });
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(3);
            while (System.nanoTime() < deadline) {
                PlainCopies.verify(copiesDir(), 1, line -> assertThat(line).endsWith(", not to its name: deleted"));
            }
        } finally {
            stop.set(true);
            churn.join();
        }
        assertThat(churnFailed).isEmpty();
    }

    @Test
    void verifyReportsACopyItCannotDeleteAndChecksTheRest() throws Exception {
        FuseAvailability.requireRoot(); // a read-only bind mount: even root cannot unlink
        byte[] first = content(SMALL, 31);
        byte[] second = content(SMALL, 32);
        B3Digest firstDigest = put(first);
        B3Digest secondDigest = put(second);
        Path firstCopy;
        Path secondCopy;
        try (PlainCopies copies = open(1, 1 << 20)) {
            made(copies, firstDigest, first.length);
            made(copies, secondDigest, second.length);
            firstCopy = copies.pathOf(firstDigest);
            secondCopy = copies.pathOf(secondDigest);
        }
        for (Path copy : List.of(firstCopy, secondCopy)) {
            Files.setPosixFilePermissions(copy, PosixFilePermissions.fromString("rw-r--r--"));
            Files.write(copy, new byte[SMALL]);
        }
        Path frozen = firstCopy.getParent();
        Commands.run("mount", "--bind", frozen.toString(), frozen.toString()).assertOk();
        try {
            Commands.run("mount", "-o", "remount,bind,ro", frozen.toString()).assertOk();
            List<String> found = new ArrayList<>();
            PlainCopies.Verification v = PlainCopies.verify(copiesDir(), 1, found::add);
            long expectedDeleted = secondCopy.getParent().equals(frozen) ? 0 : 1;
            assertThat(v).isEqualTo(new PlainCopies.Verification(2, 2L * SMALL, expectedDeleted));
            assertThat(found).hasSize(2).anySatisfy(line -> assertThat(line)
                    .startsWith("plain copy " + firstCopy + " hashes to ").contains(", not to its name: NOT deleted (")
                    .contains("Read-only file system"));
            assertThat(firstCopy).exists();
        } finally {
            Commands.run("umount", frozen.toString()).assertOk();
        }
    }

    @Test
    void verifyRefusesADirectoryWithoutTheMarkerAndTouchesNothing() throws Exception {
        Path notOurs = Files.createDirectories(tmp.resolve("not-ours/ab"));
        String hex = Blake3.digest(new byte[] {9}).toHex();
        Path file = Files.writeString(notOurs.resolve(hex), "not what the name says");
        assertThatThrownBy(() -> PlainCopies.verify(tmp.resolve("not-ours"), 1, line -> { }))
                .isInstanceOf(IOException.class).hasMessageEndingWith("is not a castore plain-copies directory");
        assertThat(file).hasContent("not what the name says");
    }

    @Test
    void openDeletesLeftoversInTmpAndLeavesStrangersInFanOutDirectoriesAlone() throws Exception {
        open(1, 1 << 20).close();
        Path tmpDir = copiesDir().resolve(PlainCopies.TMP);
        Files.write(tmpDir.resolve(Blake3.digest(new byte[] {1}).toHex()), new byte[1000]);
        Files.writeString(Files.createDirectories(tmpDir.resolve("nested/deeper")).resolve("x"), "x");
        Path fan = Files.createDirectories(copiesDir().resolve("ab"));
        Path stranger = Files.writeString(fan.resolve("notes.txt"), "mine");
        Path upperCase = Files.writeString(fan.resolve("AB" + "C".repeat(62)), "mine too");
        String hex = Blake3.digest(new byte[] {2}).toHex();
        Path wrongFan = Files.writeString(fan.resolve(hex.startsWith("ab") ? "cd" + hex.substring(2) : hex), "misplaced");

        try (PlainCopies copies = open(1, 1 << 20)) {
            try (Stream<Path> left = Files.list(tmpDir)) {
                assertThat(left).isEmpty();
            }
            assertThat(copies.count()).isZero();
            assertThat(copies.bytes()).isZero();
        }
        assertThat(stranger).hasContent("mine");
        assertThat(upperCase).hasContent("mine too");
        assertThat(wrongFan).hasContent("misplaced");
    }

    @Test
    void closeDuringABigCopyAbandonsItAndLeavesNoTemporaryFile() throws Exception {
        byte[] big = content(8 << 20, 30);
        B3Digest digest = put(big);
        var inCopy = new CountDownLatch(1);
        var tmpFilesSeen = new AtomicInteger(-1);
        var makerNice = new AtomicInteger(-100);
        var closing = new CountDownLatch(1);
        blobs.beforeRead = (d, position) -> {
            if (position == 2 << 20) { // two pieces written
                try (Stream<Path> files = Files.list(copiesDir().resolve(PlainCopies.TMP))) {
                    tmpFilesSeen.set((int) files.count());
                }
                try {
                    makerNice.set(LibcPriorityTest.niceOfThisThread());
                } catch (Exception e) {
                    throw new IOException(e);
                }
                inCopy.countDown();
                await(closing);
            }
        };
        PlainCopies copies = open(1, 1L << 30);
        copies.request(digest, big.length);
        assertThat(inCopy.await(60, TimeUnit.SECONDS)).isTrue();
        Thread closer = Thread.ofPlatform().start(copies::close);
        // close waits for the maker, which is held in a read: let it go once close has begun.
        while (closer.getState() != Thread.State.WAITING && closer.getState() != Thread.State.TIMED_WAITING) {
            Thread.sleep(5);
        }
        closing.countDown();
        closer.join();

        assertThat(tmpFilesSeen.get()).as("the copy was being written in tmp/").isEqualTo(1);
        assertThat(makerNice.get()).as("the maker's nice value").isEqualTo(19);
        assertThat(blobs.furthestRead.get()).as("abandoned, not finished").isLessThan(big.length - (1 << 20));
        assertThat(filesUnder(copiesDir())).containsExactly(copiesDir().resolve(PlainCopies.MARKER));
        assertThat(copies.count()).isZero();
        assertThat(problems).as("abandoning is not a problem").isEmpty();
        copies.request(digest, big.length); // ignored once closed
        assertThat(copies.awaitIdle(Duration.ZERO)).isTrue();
    }

    @Test
    void reopeningCountsTheCopiesAndOrdersThemByMtime() throws Exception {
        List<byte[]> data = new ArrayList<>();
        List<B3Digest> digests = putSmall(4, 40, data);
        B3Digest a = digests.get(0), b = digests.get(1), c = digests.get(2), d = digests.get(3);
        long budget = 3L * SMALL;
        try (PlainCopies copies = open(1, budget)) {
            made(copies, a, SMALL);
            made(copies, b, SMALL);
            made(copies, c, SMALL);
            Files.setLastModifiedTime(copies.pathOf(a), FileTime.from(Instant.parse("2026-01-03T00:00:00Z")));
            Files.setLastModifiedTime(copies.pathOf(b), FileTime.from(Instant.parse("2026-01-01T00:00:00Z")));
            Files.setLastModifiedTime(copies.pathOf(c), FileTime.from(Instant.parse("2026-01-02T00:00:00Z")));
        }
        try (PlainCopies copies = open(1, budget)) {
            assertThat(copies.count()).isEqualTo(3);
            assertThat(copies.bytes()).isEqualTo(3L * SMALL);
            copies.request(a, SMALL);
            assertThat(copies.awaitIdle(IDLE)).isTrue();
            assertThat(blobs.opens(a)).as("an existing copy is not made again").isEqualTo(1);

            made(copies, d, SMALL);
            assertThat(copies.pathOf(b)).as("oldest mtime goes first").doesNotExist();
            assertThat(copies.pathOf(c)).exists();
            assertThat(copies.pathOf(a)).exists();
            assertThat(readCopy(copies, c, SMALL)).isEqualTo(data.get(2));
        }
    }

    @Test
    void aBudgetLoweredBetweenRunsIsMetAtOpen() throws Exception {
        List<B3Digest> digests = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            digests.add(put(content(SMALL, 50 + i)));
        }
        try (PlainCopies copies = open(1, 3L * SMALL)) {
            for (B3Digest digest : digests) {
                made(copies, digest, SMALL);
            }
            Files.setLastModifiedTime(copies.pathOf(digests.get(0)), FileTime.from(Instant.parse("2026-01-01T00:00:00Z")));
        }
        try (PlainCopies copies = open(1, 2L * SMALL)) {
            assertThat(copies.count()).isEqualTo(2);
            assertThat(copies.bytes()).isEqualTo(2L * SMALL);
            assertThat(copies.pathOf(digests.get(0))).doesNotExist();
        }
    }

    @Test
    void openForgetsACopyDeletedBehindItsBackAndRefreshesAnOldMtimeOnce() throws Exception {
        byte[] data = content(SMALL, 60);
        byte[] other = content(SMALL, 61);
        B3Digest digest = put(data), otherDigest = put(other);
        FileTime old = FileTime.from(Instant.parse("2026-01-01T00:00:00Z"));
        try (PlainCopies copies = open(1, 1 << 20)) {
            made(copies, digest, SMALL);
            made(copies, otherDigest, SMALL);
            Files.setLastModifiedTime(copies.pathOf(otherDigest), old);
        }
        try (PlainCopies copies = open(1, 1 << 20)) {
            Files.delete(copies.pathOf(digest));
            assertThat(copies.open(digest, SMALL)).isEqualTo(-1);
            assertThat(copies.count()).isEqualTo(1);
            assertThat(copies.bytes()).isEqualTo(SMALL);
            made(copies, digest, SMALL);
            assertThat(copies.count()).isEqualTo(2);

            Instant before = Instant.now().minusSeconds(1);
            Libc.close(copies.open(otherDigest, SMALL));
            assertThat(Files.getLastModifiedTime(copies.pathOf(otherDigest)).toInstant()).isAfter(before);
            Files.setLastModifiedTime(copies.pathOf(otherDigest), old);
            Libc.close(copies.open(otherDigest, SMALL));
            assertThat(Files.getLastModifiedTime(copies.pathOf(otherDigest))).as("not again within a minute").isEqualTo(old);
        }
    }

    @Test
    void concurrentOpensAndRequestsMakeEachCopyOnce() throws Exception {
        int blobCount = 6;
        List<byte[]> data = new ArrayList<>();
        List<B3Digest> digests = new ArrayList<>();
        for (int i = 0; i < blobCount; i++) {
            data.add(content(SMALL + i, 70 + i));
            digests.add(put(data.get(i)));
        }
        try (PlainCopies copies = open(1, 1 << 30)) {
            List<Thread> threads = new ArrayList<>();
            var failures = new CopyOnWriteArrayList<Throwable>();
            for (int t = 0; t < 4; t++) {
                int seed = t;
                threads.add(Thread.ofPlatform().start(() -> {
                    var random = new SplittableRandom(seed);
                    try {
                        for (int i = 0; i < 500; i++) {
                            int k = random.nextInt(blobCount);
                            int fd = copies.open(digests.get(k), data.get(k).length);
                            if (fd < 0) {
                                copies.request(digests.get(k), data.get(k).length);
                            } else {
                                try {
                                    assertThat(readFd(fd, data.get(k).length + 1)).isEqualTo(data.get(k));
                                } finally {
                                    Libc.close(fd);
                                }
                            }
                        }
                    } catch (Throwable e) {
                        failures.add(e);
                    }
                }));
            }
            for (Thread thread : threads) {
                thread.join();
            }
            assertThat(failures).isEmpty();
            for (int k = 0; k < blobCount; k++) {
                copies.request(digests.get(k), data.get(k).length);
            }
            assertThat(copies.awaitIdle(IDLE)).isTrue();
            assertThat(copies.count()).isEqualTo(blobCount);
            for (int k = 0; k < blobCount; k++) {
                assertThat(blobs.opens(digests.get(k))).isEqualTo(1);
                assertThat(readCopy(copies, digests.get(k), data.get(k).length)).isEqualTo(data.get(k));
            }
        }
    }

    static void await(CountDownLatch latch) {
        try {
            if (!latch.await(60, TimeUnit.SECONDS)) {
                throw new AssertionError("gate never opened");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }
}
