package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.fuse.api.Attr;
import castore.fuse.api.Entry;
import castore.fuse.api.Errno;
import castore.fuse.api.FileSystem;
import castore.fuse.api.FuseException;
import castore.fuse.api.OpenReply;
import castore.fuse.api.Operation;
import castore.fuse.api.Request;
import castore.model.B3Digest;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.assertj.core.api.ThrowableAssert.ThrowingCallable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The filesystem's behaviour, by calling its methods as the FUSE server would. */
class CastoreFileSystemTest {
    static final Request REQ = new Request(2, 0, 0, 1);
    static final long ROOT = FileSystem.ROOT_ID;

    final InstrumentedBlobService blobs = new InstrumentedBlobService(new MemoryBlobService(), 1000);
    final InstrumentedDirectoryService directories = new InstrumentedDirectoryService(new MemoryDirectoryService());
    final MemoryRootService roots = new MemoryRootService();
    final Trees trees = new Trees(blobs, directories, roots);
    final List<String> problems = new CopyOnWriteArrayList<>();

    CastoreFileSystem mount(FsOptions options) {
        return new CastoreFileSystem(blobs, directories, roots, options.withProblems(problems::add));
    }

    CastoreFileSystem mount() {
        return mount(FsOptions.defaults());
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static Entry lookup(FileSystem fs, long parent, String name) throws FuseException {
        return fs.lookup(REQ, parent, bytes(name));
    }

    /** Looks up a slash-separated path from the mount root. */
    static Entry walk(FileSystem fs, String path) throws FuseException {
        Entry e = null;
        long parent = ROOT;
        for (String part : path.split("/")) {
            e = lookup(fs, parent, part);
            parent = e.nodeId();
        }
        return e;
    }

    static void assertErrno(int errno, ThrowingCallable call) {
        assertThatThrownBy(call).isInstanceOfSatisfying(FuseException.class,
                e -> assertThat(Errno.name(e.errno())).isEqualTo(Errno.name(errno)));
    }

    /** Opens (or, with zero-message opens, uses handle 0 as the kernel then does), reads, releases. */
    static String read(FileSystem fs, long node, long offset, int size) throws FuseException {
        long handle = open(fs, node);
        try {
            ByteBuffer dst = ByteBuffer.allocate(size);
            fs.read(REQ, node, handle, offset, dst);
            return new String(dst.array(), 0, dst.position(), StandardCharsets.UTF_8);
        } finally {
            if (handle != 0) {
                fs.release(REQ, node, handle);
            }
        }
    }

    static long open(FileSystem fs, long node) throws FuseException {
        try {
            return fs.open(REQ, node, 0).fileHandle();
        } catch (FuseException e) {
            if (e.errno() != Errno.ENOSYS) {
                throw e;
            }
            return 0;
        }
    }

    static FsOptions explicitOpens() {
        return FsOptions.defaults().withZeroMessageOpens(false);
    }

    @Test
    void filesOpenedInNameOrderHintTheNextOnesOfTheirDirectoryToTheBlobService() throws Exception {
        // 30 files f00..f29 with a subdirectory "f10d" among them (after f10 in name order).
        List<Object> entries = new java.util.ArrayList<>();
        List<FileNode> files = new java.util.ArrayList<>();
        for (int i = 0; i < 30; i++) {
            FileNode file = trees.file("content of file " + i);
            files.add(file);
            entries.add(String.format("f%02d", i));
            entries.add(file);
            if (i == 10) {
                entries.add("f10d");
                entries.add(trees.dir("inner", trees.file("inner")));
            }
        }
        trees.root("t", trees.dir(entries.toArray()));
        var fs = mount();
        long dir = walk(fs, "t").nodeId();
        read(fs, lookup(fs, dir, "f00").nodeId(), 0, 100);
        assertThat(blobs.hinted).as("the directory's first file: the next 16")
                .containsExactlyElementsOf(files.subList(1, 17).stream().map(FileNode::digest).toList());
        for (int i = 1; i <= 7; i++) {
            read(fs, lookup(fs, dir, String.format("f%02d", i)).nodeId(), 0, 100);
        }
        assertThat(blobs.hinted).as("9 of 16 ahead still hinted: nothing more yet").hasSize(16);
        read(fs, lookup(fs, dir, "f08").nodeId(), 0, 100);
        assertThat(blobs.hinted).as("8 of 16 ahead: topped up to 16 ahead").hasSize(24).last().isEqualTo(files.get(24).digest());
        assertThat(blobs.hintBatches).as("in two batches, each for one request").containsExactly(16, 8);
        // A reader that jumps far ahead or back hints nothing more.
        read(fs, lookup(fs, dir, "f25").nodeId(), 0, 100);
        read(fs, lookup(fs, dir, "f03").nodeId(), 0, 100);
        assertThat(blobs.hinted).hasSize(24);
        // A second mount (its own inodes): the run starts afresh, at the place of each lookup.
        var other = mount();
        long otherDir = walk(other, "t").nodeId();
        blobs.hinted.clear();
        read(other, lookup(other, otherDir, "f12").nodeId(), 0, 100);
        assertThat(blobs.hinted).as("a first open not of the first file").isEmpty();
        read(other, lookup(other, otherDir, "f13").nodeId(), 0, 100);
        assertThat(blobs.hinted).first().isEqualTo(files.get(14).digest());
        assertThat(blobs.hinted).hasSize(16);
    }

    @Test
    void aRunOfOpensGoesOnBeingReadAheadAfterOpensFarAheadInItsDirectory() throws Exception {
        // Opening a symlink opens its target where it is: in man1, `[.1.gz` opens test.1.gz.
        List<Object> entries = new java.util.ArrayList<>();
        List<FileNode> files = numberedFiles(entries, "f%02d", "file ", 60);
        trees.root("t", trees.dir(entries.toArray()));
        var fs = mount();
        long dir = walk(fs, "t").nodeId();
        for (int i = 0; i <= 7; i++) {
            read(fs, lookup(fs, dir, String.format("f%02d", i)).nodeId(), 0, 100);
        }
        read(fs, lookup(fs, dir, "f50").nodeId(), 0, 100);
        read(fs, lookup(fs, dir, "f51").nodeId(), 0, 100); // a run of two far ahead: hints up to f59
        assertThat(blobs.hinted).contains(files.get(59).digest());
        read(fs, lookup(fs, dir, "f08").nodeId(), 0, 100);
        read(fs, lookup(fs, dir, "f09").nodeId(), 0, 100);
        assertThat(blobs.hinted).as("the first run's window topped up again").contains(files.get(17).digest(), files.get(25).digest());
        assertThat(blobs.hinted).as("each file once").doesNotHaveDuplicates();
    }

    /** Adds {@code count} files named by {@code nameFormat} (0, 1, ...) to {@code entries}; their nodes, in order. */
    private List<FileNode> numberedFiles(List<Object> entries, String nameFormat, String contentPrefix, int count) {
        List<FileNode> files = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            FileNode file = trees.file(contentPrefix + i);
            files.add(file);
            entries.add(String.format(nameFormat, i));
            entries.add(file);
        }
        return files;
    }

    /** Root "t": a directory of eight files of 3 MiB, b0 to b7. */
    private void rootOfEightFilesOf3MiB() throws Exception {
        byte[] big = new byte[(int) (3 * (1 << 20))];
        List<Object> entries = new java.util.ArrayList<>();
        for (int i = 0; i < 8; i++) {
            big[0] = (byte) i;
            entries.add("b" + i);
            entries.add(trees.file(big.clone(), false));
        }
        trees.root("t", trees.dir(entries.toArray()));
    }

    @Test
    void filesAheadStopAtTheirByteBound() throws Exception {
        rootOfEightFilesOf3MiB();
        var fs = mount();
        long dir = walk(fs, "t").nodeId();
        read(fs, lookup(fs, dir, "b0").nodeId(), 0, 100);
        assertThat(blobs.hinted).as("8 MiB: two files of 3 MiB").hasSize(2);
        read(fs, lookup(fs, dir, "b1").nodeId(), 0, 100);
        assertThat(blobs.hinted).as("one of two ahead: the next one").hasSize(3);
    }

    @Test
    void aDirectoryReadInNoOrderHasItsOtherFilesHintedOnceAQuarterIsOpened() throws Exception {
        List<Object> entries = new java.util.ArrayList<>();
        List<FileNode> small = numberedFiles(entries, "g%02d", "small ", 13);
        entries.add("zz");
        entries.add(trees.dir("inner", trees.file("inner")));
        List<Object> manyEntries = new java.util.ArrayList<>();
        List<FileNode> many = numberedFiles(manyEntries, "m%02d", "many ", 100);
        trees.root("t", trees.dir("small", trees.dir(entries.toArray()), "many", trees.dir(manyEntries.toArray())));
        var fs = mount();
        long dir = walk(fs, "t/small").nodeId();
        read(fs, lookup(fs, dir, "g07").nodeId(), 0, 100);
        read(fs, lookup(fs, dir, "g02").nodeId(), 0, 100);
        assertThat(blobs.hinted).as("2 of 13 opened, out of order").isEmpty();
        read(fs, lookup(fs, dir, "g11").nodeId(), 0, 100);
        assertThat(blobs.hinted).as("3 of 13: the 10 others, from the one opened on and round")
                .containsExactlyElementsOf(java.util.stream.IntStream.of(12, 0, 1, 3, 4, 5, 6, 8, 9, 10)
                        .mapToObj(i -> small.get(i).digest()).toList());
        assertThat(blobs.hintBatches).containsExactly(10);
        for (int i : new int[] {9, 0, 12, 4}) {
            read(fs, lookup(fs, dir, String.format("g%02d", i)).nodeId(), 0, 100);
        }
        assertThat(blobs.hinted).as("each file once").hasSize(10);

        blobs.hinted.clear();
        blobs.hintBatches.clear();
        long big = walk(fs, "t/many").nodeId();
        java.util.Set<Integer> opened = new java.util.HashSet<>();
        for (int i : new int[] {90, 3, 77, 15, 60, 1, 44, 30, 99, 20, 85, 10, 70, 50, 35}) { // none follows the one before
            read(fs, lookup(fs, big, String.format("m%02d", i)).nodeId(), 0, 100);
            opened.add(i);
        }
        assertThat(blobs.hinted).as("15 of 100 opened: not yet a reader of the whole").isEmpty();
        read(fs, lookup(fs, big, "m25").nodeId(), 0, 100);
        opened.add(25);
        List<Integer> first = notOpenedAfter(25, 32, opened, 100);
        assertThat(blobs.hinted).as("16 opened: twice as many hinted, the next ones not opened, in one batch")
                .containsExactlyElementsOf(first.stream().map(i -> many.get(i).digest()).toList());
        // Opening hinted files, last first (so that none follows the one before): at 8 of them,
        // 24 of 32 are pending and the window is 48.
        for (int k = 1; k <= 7; k++) {
            read(fs, lookup(fs, big, String.format("m%02d", first.get(32 - k))).nodeId(), 0, 100);
        }
        assertThat(blobs.hintBatches).as("25 of 46 pending: nothing more yet").containsExactly(32);
        read(fs, lookup(fs, big, String.format("m%02d", first.get(24))).nodeId(), 0, 100);
        assertThat(blobs.hintBatches).as("24 of 48 pending: topped up to 48").containsExactly(32, 24);
        assertThat(blobs.hinted).as("each file once").doesNotHaveDuplicates();
        opened.addAll(first); // hinted or opened
        assertThat(blobs.hinted).as("from the one opened on, past what is hinted or opened").endsWith(
                notOpenedAfter(first.get(31), 24, opened, 100).stream().map(i -> many.get(i).digest()).toArray(B3Digest[]::new));
    }

    @Test
    void aLargeDirectoryReadAtRandomIsMostlyHintedBeforeItsFilesAreOpened() throws Exception {
        int n = 1000;
        List<Object> entries = new ArrayList<>();
        List<FileNode> files = numberedFiles(entries, "f%04d", "file ", n);
        trees.root("t", trees.dir(entries.toArray()));
        var fs = mount();
        long dir = walk(fs, "t").nodeId();
        List<Integer> order = new ArrayList<>(java.util.stream.IntStream.range(0, n).boxed().toList());
        java.util.Collections.shuffle(order, new java.util.Random(7));
        int openedBeforeHinted = 0;
        for (int i : order) {
            if (!blobs.hinted.contains(files.get(i).digest())) {
                openedBeforeHinted++;
            }
            read(fs, lookup(fs, dir, String.format("f%04d", i)).nodeId(), 0, 100);
        }
        // A window of 16 left about 9 in 10 files to be fetched when opened; one that grows with
        // what was read, about 3 in 10.
        assertThat(openedBeforeHinted).as("files opened before they were hinted").isLessThan(n * 4 / 10);
        assertThat(blobs.hinted).as("each file once").doesNotHaveDuplicates().hasSize(n - openedBeforeHinted);
        assertThat(blobs.hintBatches).as("a request's worth at a time").allMatch(size -> size <= 64);
    }

    /** The first {@code count} of {@code 0..size-1} after {@code from}, round, that are not in {@code opened}. */
    private static List<Integer> notOpenedAfter(int from, int count, java.util.Set<Integer> opened, int size) {
        List<Integer> out = new ArrayList<>();
        for (int step = 1; step < size && out.size() < count; step++) {
            int i = (from + step) % size;
            if (!opened.contains(i)) {
                out.add(i);
            }
        }
        return out;
    }

    @Test
    void aDirectoryReadInNoOrderHintsNoMoreThanTheByteBound() throws Exception {
        rootOfEightFilesOf3MiB();
        var fs = mount();
        long dir = walk(fs, "t").nodeId();
        read(fs, lookup(fs, dir, "b6").nodeId(), 0, 100);
        read(fs, lookup(fs, dir, "b3").nodeId(), 0, 100);
        assertThat(blobs.hinted).as("2 of 8 opened: twice their 6 MiB, four files of 3 MiB").hasSize(4);
    }

    @Test
    void rootNamesMatchExactlyAndMissesAreNegativeForTheRootTtl() throws Exception {
        trees.root("hello", trees.file("hi\n"));
        var fs = mount(FsOptions.defaults().withRootTtl(Duration.ofMillis(1500)));

        Entry hit = lookup(fs, ROOT, "hello");
        assertThat(hit.nodeId()).isGreaterThan(ROOT);
        assertThat(hit.entryValidNanos()).as("counted from when the catalog was asked")
                .isLessThanOrEqualTo(1_500_000_000L).isGreaterThan(1_000_000_000L);
        for (String near : List.of("Hello", "hello ", "hell", "hello\n", "hellohello")) {
            Entry miss = lookup(fs, ROOT, near);
            assertThat(miss.isNegative()).as(near).isTrue();
            assertThat(miss.entryValidNanos()).isEqualTo(1_500_000_000L);
        }
        assertThat(fs.lookup(REQ, ROOT, new byte[3]).isNegative()).as("no valid name").isTrue();
        assertErrno(Errno.ENAMETOOLONG, () -> fs.lookup(REQ, ROOT, new byte[300]));

        var noTtl = mount(FsOptions.defaults().withRootTtl(Duration.ZERO));
        assertErrno(Errno.ENOENT, () -> lookup(noTtl, ROOT, "nope"));
    }

    @Test
    void enteringADirectoryRootTellsTheRootEnteredHookOnly() throws Exception {
        trees.root("file", trees.file("x"));
        var tree = trees.dir("a", trees.file("a"));
        trees.root("tree", tree);
        List<castore.model.DirectoryNode> entered = new CopyOnWriteArrayList<>();
        var fs = mount(FsOptions.defaults().withRootEntered(entered::add));

        lookup(fs, ROOT, "file");
        assertThat(entered).isEmpty();
        lookup(fs, ROOT, "tree");
        assertThat(entered).containsExactly(tree);
        lookup(fs, ROOT, "missing");
        assertThat(entered).containsExactly(tree);
    }

    @Test
    void attributesFollowTheNodes() throws Exception {
        FileNode plain = trees.file("12345");
        FileNode exe = trees.executable("#!/bin/sh\n");
        DirectoryNode sub = trees.dir("a", trees.file("a"), "b", trees.file("b"));
        trees.root("t", trees.dir("plain", plain, "exe", exe, "link", Trees.link("plain"), "sub", sub));
        var fs = mount();

        Attr root = fs.getattr(REQ, ROOT).attr();
        assertThat(root.mode()).isEqualTo(Attr.S_IFDIR | 0555);
        assertThat(root.ino()).isEqualTo(1);

        Attr p = walk(fs, "t/plain").attr();
        assertThat(p.mode()).isEqualTo(Attr.S_IFREG | 0444);
        assertThat(p.size()).isEqualTo(5);
        assertThat(p.nlink()).isEqualTo(1);
        assertThat(List.of(p.uid(), p.gid())).containsExactly(0, 0);
        assertThat(List.of(p.atime(), p.mtime(), p.ctime())).containsExactly(0L, 0L, 0L);
        assertThat(walk(fs, "t/exe").attr().mode()).isEqualTo(Attr.S_IFREG | 0555);
        Attr l = walk(fs, "t/link").attr();
        assertThat(l.mode()).isEqualTo(Attr.S_IFLNK | 0444);
        assertThat(l.size()).isEqualTo(5);
        Entry s = walk(fs, "t/sub");
        assertThat(s.attr().mode()).isEqualTo(Attr.S_IFDIR | 0555);
        assertThat(s.attr().size()).isEqualTo(2);
        assertThat(s.entryValidNanos()).isEqualTo(Long.MAX_VALUE);
        assertThat(s.attrValidNanos()).isEqualTo(Long.MAX_VALUE);
        assertThat(fs.getattr(REQ, s.nodeId()).attr()).isEqualTo(s.attr());
        assertThat(fs.getattr(REQ, s.nodeId()).validNanos()).isEqualTo(Long.MAX_VALUE);
        assertThat(lookup(fs, s.nodeId(), "missing")).satisfies(e -> {
            assertThat(e.isNegative()).isTrue();
            assertThat(e.entryValidNanos()).isEqualTo(Long.MAX_VALUE);
        });
    }

    @Test
    void identicalContentSharesInodeNumbers() throws Exception {
        FileNode same = trees.file("same");
        DirectoryNode d = trees.dir("x", trees.file("x"));
        trees.root("r", trees.dir(
                "f1", same, "f2", same, "fx", new FileNode(same.digest(), same.size(), true),
                "d1", d, "d2", trees.dir("inner", d),
                "l1", Trees.link("target"), "l2", Trees.link("target"), "l3", Trees.link("other")));
        var fs = mount();

        Entry f1 = walk(fs, "r/f1");
        Entry f2 = walk(fs, "r/f2");
        assertThat(f2.nodeId()).isEqualTo(f1.nodeId());
        assertThat(f2.attr().ino()).isEqualTo(f1.attr().ino());
        assertThat(walk(fs, "r/fx").attr().ino()).as("executable copy differs in mode").isNotEqualTo(f1.attr().ino());
        assertThat(walk(fs, "r/l1").nodeId()).isEqualTo(walk(fs, "r/l2").nodeId());
        assertThat(walk(fs, "r/l1").attr().ino()).isNotEqualTo(walk(fs, "r/l3").attr().ino());
        Entry d1 = walk(fs, "r/d1");
        Entry d2 = walk(fs, "r/d2/inner");
        assertThat(d2.attr().ino()).isEqualTo(d1.attr().ino());
        assertThat(d2.nodeId()).as("a directory node id per place").isNotEqualTo(d1.nodeId());
        assertThat(walk(fs, "r/d1").nodeId()).isEqualTo(d1.nodeId());
        assertThat(walk(fs, "r/d1/x").nodeId()).isEqualTo(walk(fs, "r/d2/inner/x").nodeId());
    }

    @Test
    void directoriesAreFetchedOnlyWhenLookedIntoOrListed() throws Exception {
        DirectoryNode deep = trees.dir("leaf", trees.file("leaf"));
        DirectoryNode mid = trees.dir("deep", deep, "other", trees.dir("o", trees.file("o")));
        DirectoryNode top = trees.dir("mid", mid);
        trees.root("top", top);
        var fs = mount();

        Entry t = lookup(fs, ROOT, "top");
        assertThat(directories.fetched).isEmpty();
        Entry m = lookup(fs, t.nodeId(), "mid");
        assertThat(directories.fetched).containsExactly(top.digest());
        Entry d = lookup(fs, m.nodeId(), "deep");
        assertThat(directories.fetched).containsExactlyInAnyOrder(top.digest(), mid.digest());
        var sink = new RecordingSink(100);
        fs.readdir(REQ, d.nodeId(), 0, 0, false, sink);
        assertThat(sink.names()).containsExactly(".", "..", "leaf");
        assertThat(directories.fetched).containsExactlyInAnyOrder(top.digest(), mid.digest(), deep.digest());
    }

    /** A listing of the test's roots. */
    private interface RootList {
        java.util.stream.Stream<castore.model.Node.NamedNode> list() throws java.io.IOException;
    }

    /** The test's roots, listed by {@code list}. */
    private castore.service.RootService rootsListing(RootList list) {
        return new castore.service.RootService() {
            @Override
            public java.util.Optional<castore.model.Node> get(castore.model.Name name) throws java.io.IOException {
                return roots.get(name);
            }

            @Override
            public void put(castore.model.Name name, castore.model.Node node) throws java.io.IOException {
                roots.put(name, node);
            }

            @Override
            public boolean remove(castore.model.Name name) throws java.io.IOException {
                return roots.remove(name);
            }

            @Override
            public java.util.stream.Stream<castore.model.Node.NamedNode> list() throws java.io.IOException {
                return list.list();
            }
        };
    }

    @Test
    void aRootListingThatFailsPartWayLeavesNoLookupsBehind() throws Exception {
        trees.root("a", trees.dir("x", trees.file("x")));
        trees.root("b", trees.dir("y", trees.file("y")));
        // Two roots, then the connection breaks (a remote) or a record is damaged (a local journal).
        var failing = rootsListing(() -> java.util.stream.Stream.concat(roots.list(),
                java.util.stream.Stream.<castore.model.Node.NamedNode>generate(() -> {
                    throw new java.io.UncheckedIOException(new java.io.IOException("connection reset"));
                }).limit(1)));
        var fs = new CastoreFileSystem(blobs, directories, failing, FsOptions.defaults().withListRoot(true).withProblems(problems::add));
        long handle = fs.opendir(REQ, ROOT).fileHandle();
        assertErrno(Errno.EIO, () -> fs.readdir(REQ, ROOT, handle, 0, true, new RecordingSink(10)));
        assertThat(fs.inodeCount()).as("the entries the kernel never saw").isZero();
        assertThat(problems).anyMatch(p -> p.contains("connection reset"));
    }

    @Test
    void aRootListingReadAgainAfterAFailureListsEveryRoot() throws Exception {
        trees.root("a", trees.file("a"));
        trees.root("b", trees.file("b"));
        var lists = new java.util.concurrent.atomic.AtomicInteger();
        var flaky = rootsListing(() -> {
            if (lists.getAndIncrement() > 0) {
                return roots.list();
            }
            // The first listing's connection breaks at once; like a remote's stream
            // (InboundStream), a broken stream then says it has ended.
            var broken = new java.util.Iterator<castore.model.Node.NamedNode>() {
                boolean failed;

                @Override
                public boolean hasNext() {
                    if (failed) {
                        return false;
                    }
                    failed = true;
                    throw new java.io.UncheckedIOException(new java.io.IOException("connection reset"));
                }

                @Override
                public castore.model.Node.NamedNode next() {
                    throw new java.util.NoSuchElementException();
                }
            };
            return java.util.stream.StreamSupport.stream(
                    java.util.Spliterators.spliteratorUnknownSize(broken, java.util.Spliterator.ORDERED), false);
        });
        var fs = new CastoreFileSystem(blobs, directories, flaky, FsOptions.defaults().withListRoot(true).withProblems(problems::add));
        long handle = fs.opendir(REQ, ROOT).fileHandle();
        assertErrno(Errno.EIO, () -> fs.readdir(REQ, ROOT, handle, 0, false, new RecordingSink(10)));

        // The kernel asks again from the same cookie (a reader that retries after EIO).
        var again = new RecordingSink(10);
        fs.readdir(REQ, ROOT, handle, 0, false, again);
        assertThat(again.names()).as("not the broken stream's end").containsExactly(".", "..", "a", "b");
    }

    @Test
    void aDirectoryFetchThatFailsWithAnErrorIsFetchedAgainByTheNextOperation() throws Exception {
        trees.root("r", trees.dir("x", trees.file("x")));
        var failOnce = new java.util.concurrent.atomic.AtomicBoolean(true);
        var flaky = new castore.service.DirectoryService() {
            @Override
            public java.util.Optional<castore.model.Directory> get(castore.model.B3Digest digest) throws java.io.IOException {
                if (failOnce.getAndSet(false)) {
                    throw new AssertionError("a service that broke once");
                }
                return directories.get(digest);
            }

            @Override
            public boolean has(castore.model.B3Digest digest) throws java.io.IOException {
                return directories.has(digest);
            }

            @Override
            public castore.model.B3Digest put(castore.model.Directory directory) throws java.io.IOException {
                return directories.put(directory);
            }

            @Override
            public java.util.stream.Stream<castore.model.Directory> getRecursive(castore.model.B3Digest root) throws java.io.IOException {
                return directories.getRecursive(root);
            }
        };
        var fs = new CastoreFileSystem(blobs, flaky, roots, FsOptions.defaults().withProblems(problems::add));
        Entry r = lookup(fs, ROOT, "r");
        assertThatThrownBy(() -> lookup(fs, r.nodeId(), "x")).isInstanceOf(AssertionError.class);
        assertThat(org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(java.time.Duration.ofSeconds(10),
                () -> lookup(fs, r.nodeId(), "x")).nodeId()).isPositive();
    }

    @Test
    void aDirectoryWhoseNodeClaimsAnotherSizeIsAnErrorEmptyOrNot() throws Exception {
        // Root nodes are taken as given (a parent Directory could not be stored with a wrong size).
        DirectoryNode stored = trees.dir("x", trees.file("x"));
        roots.put(castore.model.Name.of("empty"), new DirectoryNode(castore.model.Directory.empty().digest(), 7));
        roots.put(castore.model.Name.of("full"), new DirectoryNode(stored.digest(), stored.size() + 1));
        var fs = mount();
        for (String name : List.of("empty", "full")) {
            Entry d = lookup(fs, ROOT, name); // the node itself still stats
            assertErrno(Errno.EIO, () -> lookup(fs, d.nodeId(), "x"));
            assertErrno(Errno.EIO, () -> fs.readdir(REQ, d.nodeId(), 0, 0, false, new RecordingSink(10)));
        }
        assertThat(problems).anyMatch(p -> p.contains("its node says 7"));
        roots.put(castore.model.Name.of("ok"), castore.model.Directory.empty().toNode());
        Entry ok = lookup(fs, ROOT, "ok");
        assertThat(lookup(fs, ok.nodeId(), "z").isNegative()).as("the true empty Directory: a plain miss").isTrue();
    }

    @Test
    void onlyRequestsNeedingASlowFetchAreHandedOff() throws Exception {
        var memoryRoots = new MemoryRootService();
        var slowRoots = new castore.service.RootService() {
            @Override
            public java.util.Optional<castore.model.Node> get(castore.model.Name name) {
                java.util.concurrent.locks.LockSupport.parkNanos(20 * FetchLatency.SLOW_NANOS);
                return memoryRoots.get(name);
            }

            @Override
            public void put(castore.model.Name name, castore.model.Node node) {
                memoryRoots.put(name, node);
            }

            @Override
            public boolean remove(castore.model.Name name) {
                return memoryRoots.remove(name);
            }

            @Override
            public java.util.stream.Stream<castore.model.Node.NamedNode> list() {
                return memoryRoots.list();
            }
        };
        var trees2 = new Trees(blobs, directories, slowRoots);
        trees2.root("r", trees2.dir("d", trees2.dir("x", trees2.file("x")), "f", trees2.file("f")));
        var fs = new CastoreFileSystem(blobs, directories, slowRoots, FsOptions.defaults().withProblems(problems::add));
        assertThat(fs.mayBlock(Operation.LOOKUP, ROOT)).as("nothing measured yet").isFalse();
        Entry r = lookup(fs, ROOT, "r");
        assertThat(fs.mayBlock(Operation.LOOKUP, ROOT)).as("the root catalog was slow").isTrue();
        assertThat(fs.mayBlock(Operation.GETATTR, r.nodeId())).isFalse();
        assertThat(fs.mayBlock(Operation.LOOKUP, r.nodeId())).as("fast memory directories").isFalse();
        Entry f = lookup(fs, r.nodeId(), "f");
        assertThat(fs.mayBlock(Operation.READDIRPLUS, r.nodeId())).isFalse();
        assertThat(fs.mayBlock(Operation.READ, f.nodeId())).isFalse();
        assertThat(fs.mayBlock(Operation.GETXATTR, f.nodeId())).isFalse();
        assertThat(fs.mayBlock(Operation.OPEN, f.nodeId())).as("answered ENOSYS at once").isFalse();
    }

    @Test
    void readdirIsInNameOrderWithTypesAndResumesAtEveryCookie() throws Exception {
        DirectoryNode child = trees.dir("z", trees.file("z"));
        trees.root("r", trees.dir("b", trees.file("b"), "a", child, "C", Trees.link("a"), "d", trees.executable("d")));
        var fs = mount();
        Entry r = lookup(fs, ROOT, "r");

        var all = new RecordingSink(100);
        fs.readdir(REQ, r.nodeId(), 0, 0, false, all);
        assertThat(all.names()).containsExactly(".", "..", "C", "a", "b", "d");
        assertThat(all.entries.stream().map(RecordingSink.Dirent::type).toList()).containsExactly(4, 4, 10, 4, 8, 8);
        assertThat(all.entries.get(0).ino()).isEqualTo(r.attr().ino());
        assertThat(all.entries.get(1).ino()).isEqualTo(1);
        assertThat(all.entries.get(3).ino()).isEqualTo(lookup(fs, r.nodeId(), "a").attr().ino());

        // One entry per reply, each call resuming at the cookie of the last: same listing.
        List<String> names = new ArrayList<>();
        long cookie = 0;
        while (true) {
            var one = new RecordingSink(1);
            fs.readdir(REQ, r.nodeId(), 0, cookie, false, one);
            if (one.entries.isEmpty()) {
                break;
            }
            names.add(one.entries.get(0).name());
            cookie = one.entries.get(0).nextOffset();
        }
        assertThat(names).isEqualTo(all.names());
    }

    @Test
    void readdirPlusCountsOnlyAcceptedEntriesAsLookups() throws Exception {
        trees.root("r", trees.dir("a", trees.dir(), "b", trees.dir("x", trees.file("x")), "c", trees.dir("y", trees.file("y"))));
        var fs = mount();
        Entry r = lookup(fs, ROOT, "r");
        assertThat(fs.inodeCount()).isEqualTo(1);

        var sink = new RecordingSink(4); // ".", "..", "a", "b"; "c" does not fit
        fs.readdir(REQ, r.nodeId(), 0, 0, true, sink);
        assertThat(sink.names()).containsExactly(".", "..", "a", "b");
        assertThat(sink.entries.get(0).entry()).as("dot entries are plain entries, no lookups").isNull();
        assertThat(sink.entries.get(0).ino()).isEqualTo(r.attr().ino());
        assertThat(fs.inodeCount()).isEqualTo(3);

        long a = sink.entries.get(2).entry().nodeId();
        long b = sink.entries.get(3).entry().nodeId();
        fs.forget(a, 1);
        fs.forget(b, 1);
        assertThat(fs.inodeCount()).as("a and b dropped; c never counted").isEqualTo(1);
    }

    @Test
    void readdirPlusGivesFilesBareUntilABareNameIsLookedUp() throws Exception {
        trees.root("r", trees.dir(
                "one", trees.dir("d", trees.dir(), "f", trees.file("f"), "l", Trees.link("f")),
                "two", trees.dir("d", trees.dir("x", trees.file("x")), "f", trees.file("g"), "l", Trees.link("g"))));
        var fs = mount();
        Entry r = lookup(fs, ROOT, "r");
        Entry one = lookup(fs, r.nodeId(), "one");
        Entry two = lookup(fs, r.nodeId(), "two");
        assertThat(fs.inodeCount()).isEqualTo(3);

        var first = new RecordingSink(10);
        fs.readdir(REQ, one.nodeId(), 0, 0, true, first);
        assertThat(first.names()).containsExactly(".", "..", "d", "f", "l");
        assertThat(first.entries.get(2).entry()).as("a subdirectory carries its lookup").isNotNull();
        assertThat(first.entries.subList(3, 5)).as("files and symlinks only their names").allSatisfy(e -> {
            assertThat(e.entry()).isNull();
            assertThat(e.ino()).isNotZero();
        });
        assertThat(first.entries.get(3).type()).isEqualTo(NodeAttributes.DT_REG);
        assertThat(first.entries.get(4).type()).isEqualTo(NodeAttributes.DT_LNK);
        assertThat(fs.inodeCount()).as("only d became a node").isEqualTo(4);
        // The bare entries' inode numbers are the ones a lookup shows.
        assertThat(first.entries.get(3).ino()).isEqualTo(lookup(fs, one.nodeId(), "f").attr().ino());

        // That lookup of a bare-listed name turned attributes on for the next listings.
        var second = new RecordingSink(10);
        fs.readdir(REQ, two.nodeId(), 0, 0, true, second);
        assertThat(second.names()).containsExactly(".", "..", "d", "f", "l");
        assertThat(second.entries.subList(2, 5)).allSatisfy(e -> assertThat(e.entry()).isNotNull());
        assertThat(second.entries.get(4).entry().attr().size()).isEqualTo(1);

        // Plain READDIR is unaffected.
        var plain = new RecordingSink(10);
        fs.readdir(REQ, one.nodeId(), 0, 0, false, plain);
        assertThat(plain.entries).allSatisfy(e -> assertThat(e.entry()).isNull());
        assertThat(plain.entries.get(3).ino()).isEqualTo(first.entries.get(3).ino());
    }

    @Test
    void aLookupOfANameListedWithItsLookupChangesNothing() throws Exception {
        trees.root("r", trees.dir(
                "one", trees.dir("d", trees.dir("f", trees.file("f"))),
                "two", trees.dir("f", trees.file("g"))));
        var fs = mount();
        Entry r = lookup(fs, ROOT, "r");
        Entry one = lookup(fs, r.nodeId(), "one");
        Entry two = lookup(fs, r.nodeId(), "two");
        fs.readdir(REQ, one.nodeId(), 0, 0, true, new RecordingSink(10));
        Entry d = lookup(fs, one.nodeId(), "d");
        lookup(fs, d.nodeId(), "f"); // d was never listed
        var listing = new RecordingSink(10);
        fs.readdir(REQ, two.nodeId(), 0, 0, true, listing);
        assertThat(listing.entries.get(2).entry()).as("still bare").isNull();
    }

    @Test
    void forgottenNodesAreDroppedButKeptWhileReferencedOrOpen() throws Exception {
        trees.root("r", trees.dir("f", trees.file("content"), "d", trees.dir("x", trees.file("x"))));
        var fs = mount(explicitOpens());
        Entry r = lookup(fs, ROOT, "r");
        Entry f = lookup(fs, r.nodeId(), "f");
        assertThat(lookup(fs, r.nodeId(), "f").nodeId()).isEqualTo(f.nodeId());
        Entry d = lookup(fs, r.nodeId(), "d");
        assertThat(fs.inodeCount()).isEqualTo(3);

        fs.forget(f.nodeId(), 1);
        assertThat(fs.getattr(REQ, f.nodeId()).attr().size()).as("still one reference").isEqualTo(7);
        OpenReply h = fs.open(REQ, f.nodeId(), 0);
        fs.forget(f.nodeId(), 1);
        assertThat(fs.inodeCount()).as("open handle keeps it").isEqualTo(3);
        fs.release(REQ, f.nodeId(), h.fileHandle());
        assertThat(fs.inodeCount()).isEqualTo(2);
        assertErrno(Errno.ENOENT, () -> fs.getattr(REQ, f.nodeId()));

        fs.batchForget(new long[] {d.nodeId(), r.nodeId()}, new long[] {1, 1});
        assertThat(fs.inodeCount()).isZero();
        Entry again = lookup(fs, ROOT, "r");
        assertThat(again.nodeId()).as("node ids are never reused").isGreaterThan(d.nodeId());
        assertThat(again.attr().ino()).as("the inode number is the content's").isEqualTo(r.attr().ino());
        assertThat(again.generation()).isZero();
    }

    @Test
    void rootListingIsRefusedUnlessAllowedAndThenStreamsWithCookies() throws Exception {
        FileNode f = trees.file("x");
        for (int i = 0; i < 50; i++) {
            trees.root(String.format("root%02d", i), i % 2 == 0 ? f : trees.dir("n", trees.file("n" + i)));
        }
        var refused = mount();
        assertErrno(Errno.ENOSYS, () -> refused.opendir(REQ, ROOT)); // the kernel opens; reading is refused
        assertErrno(Errno.EPERM, () -> refused.readdir(REQ, ROOT, 0, 0, false, new RecordingSink(10)));
        var refusedExplicit = mount(explicitOpens());
        assertErrno(Errno.EPERM, () -> refusedExplicit.opendir(REQ, ROOT));
        assertErrno(Errno.EPERM, () -> refusedExplicit.readdir(REQ, ROOT, 7, 0, false, new RecordingSink(10)));

        var fs = mount(FsOptions.defaults().withListRoot(true));
        OpenReply h = fs.opendir(REQ, ROOT);
        assertThat(h.openFlags() & OpenReply.CACHE_DIR).as("the root listing changes").isZero();
        List<String> names = new ArrayList<>();
        long cookie = 0;
        while (true) {
            var sink = new RecordingSink(7);
            fs.readdir(REQ, ROOT, h.fileHandle(), cookie, true, sink);
            if (sink.entries.isEmpty()) {
                break;
            }
            sink.entries.forEach(e -> names.add(e.name()));
            cookie = sink.entries.getLast().nextOffset();
        }
        assertThat(names).hasSize(52).startsWith(".", "..", "root00", "root01").endsWith("root49");
        // Seeking back re-streams from the cookie.
        var again = new RecordingSink(2);
        fs.readdir(REQ, ROOT, h.fileHandle(), 12, false, again);
        assertThat(again.names()).containsExactly("root10", "root11");
        fs.releasedir(REQ, ROOT, h.fileHandle());
        assertThat(fs.inodeCount()).as("25 shared-file lookups are one node, plus 25 directories").isEqualTo(26);
    }

    @Test
    void aRepointedRootGetsANewNode() throws Exception {
        trees.root("app", trees.dir("v", trees.file("1")));
        var fs = mount(FsOptions.defaults().withRootTtl(Duration.ZERO)); // asked on every lookup (RootAnswersTest: with a TTL)
        Entry first = lookup(fs, ROOT, "app");
        trees.root("app", trees.dir("v", trees.file("2")));
        Entry second = lookup(fs, ROOT, "app");
        assertThat(second.nodeId()).isNotEqualTo(first.nodeId());
        assertThat(read(fs, lookup(fs, second.nodeId(), "v").nodeId(), 0, 10)).isEqualTo("2");
        assertThat(read(fs, lookup(fs, first.nodeId(), "v").nodeId(), 0, 10)).as("the old tree still serves").isEqualTo("1");
    }

    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void readsReturnExactlyTheRequestedBytesAtAnyOffset(boolean zeroMessageOpens) throws Exception {
        byte[] data = new byte[10_000];
        new java.util.SplittableRandom(7).nextBytes(data);
        FileNode f = trees.file(data, false);
        trees.root("f", f);
        var fs = mount(FsOptions.defaults().withReadAheadBytes(0).withZeroMessageOpens(zeroMessageOpens));
        Entry e = lookup(fs, ROOT, "f");
        long handle = open(fs, e.nodeId());
        assertThat(handle == 0).isEqualTo(zeroMessageOpens);
        if (!zeroMessageOpens) {
            OpenReply second = fs.open(REQ, e.nodeId(), 0);
            assertThat(second.openFlags() & OpenReply.KEEP_CACHE).isNotZero();
            fs.release(REQ, e.nodeId(), second.fileHandle());
        }
        var random = new java.util.SplittableRandom(1);
        for (int i = 0; i < 300; i++) {
            int offset = random.nextInt(data.length + 100);
            int size = random.nextInt(1, 3000);
            ByteBuffer dst = ByteBuffer.allocate(size);
            fs.read(REQ, e.nodeId(), handle, offset, dst);
            int expected = Math.max(0, Math.min(size, data.length - offset));
            assertThat(dst.position()).isEqualTo(expected);
            assertThat(java.util.Arrays.copyOf(dst.array(), expected))
                    .isEqualTo(java.util.Arrays.copyOfRange(data, Math.min(offset, data.length), Math.min(offset, data.length) + expected));
        }
        if (handle != 0) {
            fs.release(REQ, e.nodeId(), handle);
        }
        assertThat(blobs.opens.get()).as("one reader per open, not per read").isEqualTo(zeroMessageOpens ? 1 : 2);
    }

    @Test
    void errorsFollowPosix() throws Exception {
        trees.root("f", trees.file("x"));
        trees.root("d", trees.dir("x", trees.file("x")));
        trees.root("l", Trees.link("f"));
        var fs = mount(explicitOpens());
        long f = lookup(fs, ROOT, "f").nodeId();
        long d = lookup(fs, ROOT, "d").nodeId();
        long l = lookup(fs, ROOT, "l").nodeId();

        assertErrno(Errno.ENOTDIR, () -> lookup(fs, f, "x"));
        assertErrno(Errno.ENOTDIR, () -> fs.opendir(REQ, f));
        assertErrno(Errno.ENOTDIR, () -> fs.readdir(REQ, f, 0, 0, false, new RecordingSink(10)));
        assertErrno(Errno.EISDIR, () -> fs.open(REQ, d, 0));
        assertErrno(Errno.EISDIR, () -> fs.open(REQ, ROOT, 0));
        assertErrno(Errno.EINVAL, () -> fs.open(REQ, l, 0));
        assertErrno(Errno.EINVAL, () -> fs.readlink(REQ, f));
        assertErrno(Errno.EINVAL, () -> fs.readlink(REQ, d));
        assertThat(new String(fs.readlink(REQ, l), StandardCharsets.UTF_8)).isEqualTo("f");
        for (int flags : new int[] {1, 2, 01000}) {
            assertErrno(Errno.EROFS, () -> fs.open(REQ, f, flags));
        }
        assertErrno(Errno.EROFS, () -> fs.access(REQ, f, 2));
        assertErrno(Errno.EACCES, () -> fs.access(REQ, f, 1));
        assertErrno(Errno.EACCES, () -> fs.access(REQ, l, 1));
        fs.access(REQ, f, 4);
        fs.access(REQ, ROOT, 1 | 4);
        fs.access(REQ, d, 1 | 4);
        assertErrno(Errno.EBADF, () -> fs.read(REQ, f, 999, 0, ByteBuffer.allocate(1)));
        assertErrno(Errno.ENOENT, () -> fs.getattr(REQ, 12345));

        // Zero-message opens: the kernel opens by itself after the first ENOSYS; reads of
        // directories never reach a filesystem (the kernel answers EISDIR), handle 0 reads work.
        var kernelOpens = mount();
        long kf = lookup(kernelOpens, ROOT, "f").nodeId();
        assertErrno(Errno.ENOSYS, () -> kernelOpens.open(REQ, kf, 0));
        assertErrno(Errno.ENOSYS, () -> kernelOpens.opendir(REQ, lookup(kernelOpens, ROOT, "d").nodeId()));
        assertThat(read(kernelOpens, kf, 0, 10)).isEqualTo("x");
        assertErrno(Errno.EISDIR, () -> kernelOpens.read(REQ, lookup(kernelOpens, ROOT, "d").nodeId(), 0, 0, ByteBuffer.allocate(1)));
        var listable = mount(FsOptions.defaults().withListRoot(true));
        assertThat(listable.opendir(REQ, lookup(listable, ROOT, "d").nodeId()).openFlags() & OpenReply.CACHE_DIR)
                .as("with --list-root directories are opened explicitly").isNotZero();
    }

    @Test
    void aMissingDirectoryIsEioForItsContentsOnlyAndReportedOnce() throws Exception {
        DirectoryNode gone = Trees.unstoredDir("x", trees.file("x"));
        trees.root("gone", gone);
        trees.root("fine", trees.file("fine"));
        var fs = mount();
        Entry e = lookup(fs, ROOT, "gone");
        assertThat(fs.getattr(REQ, e.nodeId()).attr().mode()).isEqualTo(Attr.S_IFDIR | 0555);
        assertErrno(Errno.EIO, () -> lookup(fs, e.nodeId(), "x"));
        assertErrno(Errno.EIO, () -> fs.readdir(REQ, e.nodeId(), 0, 0, false, new RecordingSink(10)));
        assertThat(problems).hasSize(1).allSatisfy(p -> assertThat(p).contains(gone.digest().toString()).contains("missing"));
        assertThat(read(fs, lookup(fs, ROOT, "fine").nodeId(), 0, 10)).isEqualTo("fine");

        var explicit = mount(explicitOpens());
        assertErrno(Errno.EIO, () -> explicit.opendir(REQ, lookup(explicit, ROOT, "gone").nodeId()));

        // Stored later (e.g. by a repair): the next operation fetches again.
        directories.put(Trees.directory("x", trees.file("x")));
        assertThat(lookup(fs, e.nodeId(), "x").isNegative()).isFalse();
    }

    @Test
    void aMissingOrCorruptedBlobIsEioWhileStatWorks() throws Exception {
        FileNode missing = new FileNode(trees.file("elsewhere").digest(), 3, false); // size disagrees with the blob
        FileNode absent = new FileNode(castore.hash.Blake3.digest(bytes("never stored")), 12, false);
        FileNode bad = trees.file("corrupted bytes");
        trees.root("r", trees.dir("absent", absent, "wrongsize", missing, "bad", bad));
        var fs = mount(explicitOpens());
        Entry r = lookup(fs, ROOT, "r");

        Entry a = lookup(fs, r.nodeId(), "absent");
        assertThat(fs.getattr(REQ, a.nodeId()).attr().size()).isEqualTo(12);
        assertErrno(Errno.EIO, () -> fs.open(REQ, a.nodeId(), 0));
        assertErrno(Errno.EIO, () -> fs.open(REQ, a.nodeId(), 0));
        assertErrno(Errno.EIO, () -> fs.open(REQ, lookup(fs, r.nodeId(), "wrongsize").nodeId(), 0));

        blobs.corrupted.add(bad.digest());
        long b = lookup(fs, r.nodeId(), "bad").nodeId();
        OpenReply h = fs.open(REQ, b, 0);
        assertErrno(Errno.EIO, () -> fs.read(REQ, b, h.fileHandle(), 0, ByteBuffer.allocate(100)));
        assertErrno(Errno.EIO, () -> fs.read(REQ, b, h.fileHandle(), 5, ByteBuffer.allocate(100)));
        fs.release(REQ, b, h.fileHandle());

        assertThat(problems).hasSize(3);
        assertThat(String.join("\n", problems)).contains(absent.digest().toString(), missing.digest().toString(),
                bad.digest().toString());
        assertThat(fs.openFileCount()).isZero();

        // Without handles the same failures come at the first read.
        var kernelOpens = mount();
        long r2 = lookup(kernelOpens, ROOT, "r").nodeId();
        for (String name : List.of("absent", "wrongsize", "bad")) {
            long node = lookup(kernelOpens, r2, name).nodeId();
            assertErrno(Errno.EIO, () -> kernelOpens.read(REQ, node, 0, 0, ByteBuffer.allocate(10)));
        }
        assertThat(problems).as("once per digest by the second filesystem too").hasSize(6);
    }

    @Test
    void digestXattrsOnFilesAndDirectories() throws Exception {
        FileNode f = trees.file("x");
        DirectoryNode d = trees.dir("f", f, "l", Trees.link("f"));
        trees.root("d", d);
        var fs = mount();
        long dir = lookup(fs, ROOT, "d").nodeId();
        long file = lookup(fs, dir, "f").nodeId();
        long link = lookup(fs, dir, "l").nodeId();

        assertThat(new String(fs.getxattr(REQ, dir, bytes("user.tvix.castore.directory.digest")), StandardCharsets.US_ASCII))
                .isEqualTo(d.digest().toString()).startsWith("b3:");
        assertThat(new String(fs.getxattr(REQ, file, bytes("user.tvix.castore.blob.digest")), StandardCharsets.US_ASCII))
                .isEqualTo(f.digest().toString());
        assertThat(fs.listxattr(REQ, dir)).isEqualTo(bytes("user.tvix.castore.directory.digest\0"));
        assertThat(fs.listxattr(REQ, file)).isEqualTo(bytes("user.tvix.castore.blob.digest\0"));
        assertThat(fs.listxattr(REQ, link)).isEmpty();
        assertThat(fs.listxattr(REQ, ROOT)).isEmpty();
        assertErrno(Errno.ENODATA, () -> fs.getxattr(REQ, file, bytes("user.tvix.castore.directory.digest")));
        assertErrno(Errno.ENODATA, () -> fs.getxattr(REQ, dir, bytes("user.other")));
        assertErrno(Errno.ENODATA, () -> fs.getxattr(REQ, link, bytes("user.tvix.castore.blob.digest")));

        var off = mount(FsOptions.defaults().withXattrs(false));
        long offDir = lookup(off, ROOT, "d").nodeId();
        assertErrno(Errno.ENOSYS, () -> off.getxattr(REQ, offDir, bytes("user.tvix.castore.directory.digest")));
        assertErrno(Errno.ENOSYS, () -> off.listxattr(REQ, offDir));
    }
}
