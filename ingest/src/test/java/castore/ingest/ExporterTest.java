package castore.ingest;

import static castore.ingest.RawTree.bytes;
import static castore.ingest.RawTree.join;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import castore.hash.Blake3;
import castore.ingest.posix.PosixException;
import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.SymlinkNode;
import castore.service.BlobWriter;
import castore.service.NotFoundException;
import castore.service.memory.MemoryBlobService;
import castore.service.memory.MemoryDirectoryService;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExporterTest {
    @TempDir
    Path tmp;

    final MemoryBlobService blobs = new MemoryBlobService();
    final MemoryDirectoryService directories = new MemoryDirectoryService();
    final Exporter exporter = new Exporter(blobs, directories, 2);

    private FileNode store(String content, boolean executable) throws IOException {
        byte[] bytes = content.getBytes(StandardCharsets.UTF_8);
        try (BlobWriter w = blobs.create()) {
            w.write(bytes, 0, bytes.length);
            return new FileNode(w.finish(), bytes.length, executable);
        }
    }

    @Test
    void fileAndSymlinkRoots() throws IOException {
        exporter.export(store("hello", true), bytes(tmp.resolve("f")));
        assertThat(Files.readString(tmp.resolve("f"))).isEqualTo("hello");
        assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(tmp.resolve("f")))).isEqualTo("rwxr-xr-x");
        exporter.export(SymlinkNode.of("../somewhere"), bytes(tmp.resolve("l")));
        assertThat(Files.readSymbolicLink(tmp.resolve("l"))).isEqualTo(Path.of("../somewhere"));
        assertThat(exporter.stats()).isEqualTo(new ExportStats(1, 0, 1, 5));
    }

    @Test
    void destinationThatExistsIsRefusedAndLeftAlone() throws IOException {
        Files.writeString(tmp.resolve("taken"), "mine");
        assertThatThrownBy(() -> exporter.export(store("x", false), bytes(tmp.resolve("taken"))))
                .isInstanceOf(PosixException.class).hasMessage("cannot open " + tmp + "/taken: File exists");
        assertThatThrownBy(() -> exporter.export(new DirectoryNode(Directory.empty().digest(), 0), bytes(tmp)))
                .isInstanceOf(PosixException.class).hasMessage("cannot create directory " + tmp + ": File exists");
        assertThat(Files.readString(tmp.resolve("taken"))).isEqualTo("mine");
    }

    @Test
    void missingBlobAndDirectoryNameThePath() throws IOException {
        B3Digest absent = Blake3.digest("absent".getBytes(StandardCharsets.UTF_8));
        Directory sub = Directory.builder().add("gone", new FileNode(absent, 6, false)).build();
        directories.put(sub);
        Directory top = Directory.builder().add("sub", new DirectoryNode(sub.digest(), sub.size())).build();
        directories.put(top);
        byte[] dest = bytes(tmp.resolve("out"));
        assertThatThrownBy(() -> exporter.export(new DirectoryNode(top.digest(), top.size()), dest))
                .isInstanceOf(NotFoundException.class)
                .hasMessage("blob " + absent + " (for " + tmp + "/out/sub/gone) is not in the store");

        B3Digest missingDir = Blake3.digest("no such directory".getBytes(StandardCharsets.UTF_8));
        assertThatThrownBy(() -> exporter.export(new DirectoryNode(missingDir, 3), join(bytes(tmp), "out2")))
                .isInstanceOf(NotFoundException.class)
                .hasMessage("directory " + missingDir + " (for " + tmp + "/out2) is not in the store");
    }
}
