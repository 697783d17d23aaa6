package castore.fuse.transport;

import castore.fuse.testing.MemoryFileSystem;
import castore.fuse.testing.MountFixture;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

class SmokeTest {
    @TempDir
    Path tmp;

    @Test
    void mountsAndReads() throws Exception {
        var fs = MemoryFileSystem.builder().file("hello.txt", "hello\n").build();
        try (var m = MountFixture.mount(tmp, fs, MountOptions.defaults().withDebug(true))) {
            assertThat(Files.readString(m.path("hello.txt"))).isEqualTo("hello\n");
            System.err.println(m.mountInfo());
        }
    }
}
