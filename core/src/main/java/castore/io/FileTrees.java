package castore.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.stream.Stream;

/** Whole directory trees on disk. */
public final class FileTrees {
    private FileTrees() {
    }

    /**
     * Deletes {@code dir} and everything in it, as far as it can: an entry that cannot be deleted
     * does not stop the rest. Symbolic links are deleted, never followed. True if {@code dir} is
     * gone afterwards (also when it was not there).
     */
    public static boolean deleteAsFarAsPossible(Path dir) {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    // go on with the rest; the result says whether the directory is gone
                }
            }
        } catch (IOException | UncheckedIOException e) {
            // gone already, or unreadable: checked below
        }
        return !Files.exists(dir, LinkOption.NOFOLLOW_LINKS);
    }
}
