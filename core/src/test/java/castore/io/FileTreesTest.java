package castore.io;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FileTreesTest {
    @TempDir
    Path tmp;

    @Test
    void deletesATreeButNotWhatItsLinksPointTo() throws Exception {
        Path kept = Files.writeString(tmp.resolve("kept.txt"), "mine");
        Path tree = Files.createDirectories(tmp.resolve("tree/a/b"));
        Files.writeString(tree.resolve("file"), "x");
        Files.createSymbolicLink(tmp.resolve("tree/a/link"), kept);
        Files.createSymbolicLink(tmp.resolve("tree/dirlink"), tmp);
        assertThat(FileTrees.deleteAsFarAsPossible(tmp.resolve("tree"))).isTrue();
        assertThat(tmp.resolve("tree")).doesNotExist();
        assertThat(Files.readString(kept)).isEqualTo("mine");
    }

    @Test
    void aMissingTreeCountsAsGone() {
        assertThat(FileTrees.deleteAsFarAsPossible(tmp.resolve("absent"))).isTrue();
    }
}
