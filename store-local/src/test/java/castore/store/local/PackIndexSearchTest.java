package castore.store.local;

import static org.assertj.core.api.Assertions.assertThat;

import castore.model.B3Digest;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The index search runs over a heap copy of digest bytes 1-4 and confirms in the mapped index:
 * digests that share those bytes (and byte 0), or share everything but the kind, must still be
 * told apart. Real digests almost never share 5 bytes, so they are made up here.
 */
class PackIndexSearchTest {
    @TempDir
    Path dir;

    @Test
    void digestsSharingTheirFirstFiveBytesAreFoundExactly() throws IOException {
        Random random = new Random(11);
        List<B3Digest> stored = new ArrayList<>();
        List<B3Digest> absent = new ArrayList<>();
        for (int group = 0; group < 40; group++) {
            byte[] prefix = new byte[5];
            random.nextBytes(prefix);
            for (int i = 0; i < 12; i++) {
                byte[] d = new byte[B3Digest.LENGTH];
                random.nextBytes(d);
                System.arraycopy(prefix, 0, d, 0, prefix.length);
                (i % 3 == 2 ? absent : stored).add(B3Digest.of(d));
            }
        }
        StoreLayout layout = StoreLayout.openOrInit(dir);
        PackStore writing = new PackStore(layout, false, 64L << 20, 1, true, false);
        for (B3Digest d : stored) {
            byte[] payload = d.toByteArray();
            writing.append(ObjectKind.CHUNK, d, payload, 0, payload.length, 0);
            // The same digest under a second kind sits next to it in the index; BLOB (between the two) is absent.
            writing.append(ObjectKind.DIRECTORY, d, new byte[] {7}, 0, 1, 3);
        }
        writing.commit();
        writing.close();

        PackStore reading = new PackStore(layout, false, 64L << 20, 1, true, false);
        try {
            for (B3Digest d : stored) {
                Location chunk = reading.find(ObjectKind.CHUNK, d);
                assertThat(chunk).as("chunk %s", d).isNotNull();
                assertThat(chunk.source().read(chunk)).isEqualTo(d.toByteArray());
                Location directory = reading.find(ObjectKind.DIRECTORY, d);
                assertThat(directory).as("directory %s", d).isNotNull();
                assertThat(directory.aux()).isEqualTo(3);
                assertThat(reading.find(ObjectKind.BLOB, d)).isNull();
            }
            for (B3Digest d : absent) {
                assertThat(reading.find(ObjectKind.CHUNK, d)).as("absent %s", d).isNull();
            }
        } finally {
            reading.close();
        }
    }
}
