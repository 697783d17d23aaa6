package castore.fs;

import static castore.fs.CastoreFileSystemTest.lookup;
import static castore.fs.CastoreFileSystemTest.read;
import static castore.fs.CastoreFileSystemTest.walk;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.InvalidDataException;
import castore.model.Node;
import castore.model.SymlinkNode;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import castore.service.memory.MemoryRootService;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Read traces: what the filesystem tells of, how it is written, and how it is read back. */
class ReadTraceTest {
    @TempDir
    Path tmp;

    private final Trees trees = new Trees(new MemoryBlobService(), new MemoryDirectoryService(), new MemoryRootService());

    @Test
    void theFilesystemTellsOfEachDirectoryLoadedAndEachFileReadInTheOrderTheyWere() throws Exception {
        FileNode a = trees.file("a");
        FileNode b = trees.file("b");
        DirectoryNode sub = trees.dir("b", b, "same-as-a", a, "link", SymlinkNode.of("b"));
        DirectoryNode top = trees.dir("a", a, "sub", sub, "unread", trees.file("never read"));
        trees.root("t", top);
        List<Node> told = new ArrayList<>();
        var fs = new CastoreFileSystem(trees.blobs, trees.directories, trees.roots,
                FsOptions.defaults().withAccessed(node -> {
                    synchronized (told) {
                        told.add(node);
                    }
                }));
        read(fs, walk(fs, "t/sub/b").nodeId(), 0, 10);
        read(fs, walk(fs, "t/a").nodeId(), 0, 10);
        read(fs, walk(fs, "t/sub/same-as-a").nodeId(), 0, 10); // the same blob: its reader is already open
        lookup(fs, walk(fs, "t").nodeId(), "unread"); // looked up, never read: not told
        fs.readlink(CastoreFileSystemTest.REQ, walk(fs, "t/sub/link").nodeId());
        assertThat(told).containsExactly(top, sub, b, a);
    }

    @Test
    void aRecordedTraceReadsBackInFirstUseOrderEachEntryOnce() throws Exception {
        Path file = tmp.resolve("t.trace");
        DirectoryNode d1 = new DirectoryNode(Blake3.digest(new byte[] {1}), 120);
        FileNode f1 = new FileNode(Blake3.digest(new byte[] {2}), 5_000_000, true);
        FileNode f2 = new FileNode(Blake3.digest(new byte[] {3}), 0, false);
        DirectoryNode d2 = new DirectoryNode(Blake3.digest(new byte[] {4}), 0);
        // A blob whose digest is also a Directory's: both are entries.
        FileNode sameDigestAsD1 = new FileNode(d1.digest(), 9, false);
        try (ReadTrace.Recorder recorder = ReadTrace.record(file)) {
            for (Node n : List.of(d1, f1, d1, SymlinkNode.of("x"), f2, f1, d2, sameDigestAsD1)) {
                recorder.accept(n);
            }
            assertThat(recorder.size()).isEqualTo(5);
        }
        assertThat(Files.readAllLines(file)).containsExactly(ReadTrace.HEADER,
                "d " + d1.digest() + " 120", "f " + f1.digest() + " 5000000", "f " + f2.digest() + " 0",
                "d " + d2.digest() + " 0", "f " + d1.digest() + " 9");
        // Read back as nodes (files not executable: a trace does not say), comments and blank lines skipped, repeats dropped.
        Files.writeString(file, "# edited by hand\n\nf " + f2.digest() + " 0\n" + "d  " + d1.digest() + "   120 \n",
                java.nio.file.StandardOpenOption.APPEND);
        assertThat(ReadTrace.read(file)).containsExactly(d1, new FileNode(f1.digest(), 5_000_000, false), f2, d2, sameDigestAsD1);
    }

    @Test
    void aRecorderWritesWhatItWasToldWhileItRuns() throws Exception {
        Path file = tmp.resolve("live.trace");
        DirectoryNode d = new DirectoryNode(Blake3.digest(new byte[] {9}), 3);
        try (ReadTrace.Recorder recorder = ReadTrace.record(file)) {
            recorder.accept(d);
            Instant deadline = Instant.now().plus(Duration.ofSeconds(10));
            while (Files.readAllLines(file).size() < 2 && Instant.now().isBefore(deadline)) {
                Thread.sleep(20);
            }
            // Before close: a mount killed later leaves this much behind.
            assertThat(Files.readAllLines(file)).containsExactly(ReadTrace.HEADER, "d " + d.digest() + " 3");
        }
    }

    @Test
    void aFileThatIsNoTraceOrHasABadLineIsRefusedNamingTheLine() throws Exception {
        String digest = Blake3.digest(new byte[0]).toString();
        assertRefused("", "is not a read trace: its first line is not '" + ReadTrace.HEADER + "'");
        assertRefused("castore-read-trace 2\n", "is not a read trace: its first line is not '" + ReadTrace.HEADER + "'");
        assertRefused(ReadTrace.HEADER + "\nd " + digest + " 1\nx " + digest + " 1\n",
                "line 3: expected 'd b3:DIGEST SIZE' or 'f b3:DIGEST SIZE'");
        assertRefused(ReadTrace.HEADER + "\nf " + digest + "\n", "line 2: expected 'd b3:DIGEST SIZE' or 'f b3:DIGEST SIZE'");
        assertRefused(ReadTrace.HEADER + "\nf b3:AAAA 1\n", "line 2: invalid digest 'b3:AAAA': 3 bytes, expected 32");
        assertRefused(ReadTrace.HEADER + "\nf " + digest + " -1\n", "line 2: invalid size '-1'");
        assertRefused(ReadTrace.HEADER + "\nf " + digest + " 1\u00072\n", "line 2: invalid size '1?2'");
        Path binary = tmp.resolve("binary");
        Files.write(binary, new byte[] {(byte) 0xff, (byte) 0xfe, 0, 1});
        assertThatThrownBy(() -> ReadTrace.read(binary)).isInstanceOf(InvalidDataException.class)
                .hasMessage(binary + " is not a read trace: it is not UTF-8 text");
    }

    private void assertRefused(String content, String message) throws Exception {
        Path file = tmp.resolve("bad.trace");
        Files.writeString(file, content, StandardCharsets.UTF_8);
        assertThatThrownBy(() -> ReadTrace.read(file)).isInstanceOf(InvalidDataException.class).hasMessage(file + " " + message);
    }

    @Test
    void recordingIntoADirectoryThatIsMissingFails() {
        assertThatThrownBy(() -> ReadTrace.record(tmp.resolve("missing/t.trace"))).isInstanceOf(java.nio.file.NoSuchFileException.class);
    }
}
