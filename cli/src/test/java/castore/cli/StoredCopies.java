package castore.cli;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;

/** Damage done on purpose to a local store's packs, for tests of what finds it. */
final class StoredCopies {
    private StoredCopies() {
    }

    /**
     * Flips one byte (the 11th from {@code offset}) of the stored copy of {@code content}, in
     * whichever pack of the local store at {@code store} holds it; found by its 64 bytes from {@code offset}.
     */
    static void corrupt(Path store, byte[] content, int offset) throws IOException {
        byte[] needle = Arrays.copyOfRange(content, offset, offset + 64);
        try (Stream<Path> packs = Files.list(store.resolve("packs"))) {
            for (Path pack : packs.filter(p -> p.toString().endsWith(".pack")).toList()) {
                byte[] bytes = Files.readAllBytes(pack);
                for (int i = 0; i + needle.length <= bytes.length; i++) {
                    if (bytes[i] == needle[0] && Arrays.equals(bytes, i, i + needle.length, needle, 0, needle.length)) {
                        try (RandomAccessFile f = new RandomAccessFile(pack.toFile(), "rw")) {
                            f.seek(i + 10);
                            f.write(bytes[i + 10] ^ 0x55);
                        }
                        return;
                    }
                }
            }
        }
        throw new AssertionError("content not found in any pack");
    }
}
