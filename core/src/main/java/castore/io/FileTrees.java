package castore.io;

import java.io.IOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;

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
        try {
            // walkFileTree goes on past an entry it cannot read (Files.walk throws there and
            // would stop before deleting anything); it never follows links.
            Files.walkFileTree(dir, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) {
                    deleteQuietly(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult visitFileFailed(Path file, IOException e) {
                    deleteQuietly(file); // an unreadable directory may still be empty enough to go
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path directory, IOException e) {
                    deleteQuietly(directory);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            // not reached: every failure above is passed over; checked below
        }
        return !Files.exists(dir, LinkOption.NOFOLLOW_LINKS);
    }

    private static void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException e) {
            // go on with the rest; the result says whether the directory is gone
        }
    }
}
