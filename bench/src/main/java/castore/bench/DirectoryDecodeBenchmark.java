package castore.bench;

import castore.model.B3Digest;
import castore.model.Directory;
import castore.model.DirectoryNode;
import castore.model.FileNode;
import castore.model.SymlinkNode;
import com.google.protobuf.ByteString;
import java.util.Random;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * What decoding a stored Directory costs: every directory a cold walk enters is read and decoded
 * once (a mount's `find` over the bench tree decodes 4,307). Each operation decodes the next of
 * 4,096 encoded Directories shaped like the bench tree's (/usr/share): 17 entries on average, a
 * quarter of them subdirectories, a tenth symlinks, names of 4-31 bytes. The mount runs C1 only
 * (the launcher's -XX:TieredStopAtLevel=1), so measure that too; directories/s = ops/s.
 *
 * <pre>
 * ./mvnw -B -q -pl bench -am package -DskipTests
 * java -cp bench/target/classes:$(cat bench/target/classpath.txt) org.openjdk.jmh.Main DirectoryDecodeBenchmark
 * java -cp bench/target/classes:$(cat bench/target/classpath.txt) org.openjdk.jmh.Main DirectoryDecodeBenchmark -jvmArgsAppend -XX:TieredStopAtLevel=1
 * </pre>
 */
@State(Scope.Thread)
public class DirectoryDecodeBenchmark extends OneThreadBenchmark {
    private static final int DIRECTORIES = 4096;
    private static final String NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789._-";

    private byte[][] encoded;
    private int next;

    @Setup
    public void setUp() {
        Random random = new Random(4307);
        encoded = new byte[DIRECTORIES][];
        for (int d = 0; d < DIRECTORIES; d++) {
            // Sizes spread as a tree's: most small, a few large.
            int entries = 1 + (int) Math.min(400, -Math.log(1 - random.nextDouble()) * 16);
            var builder = Directory.builder();
            for (int e = 0; e < entries; e++) {
                String name = name(random) + "-" + e;
                double kind = random.nextDouble();
                if (kind < 0.25) {
                    builder.add(name, new DirectoryNode(digest(random), 1 + random.nextInt(200)));
                } else if (kind < 0.35) {
                    builder.add(name, new SymlinkNode(ByteString.copyFromUtf8("../" + name(random))));
                } else {
                    builder.add(name, new FileNode(digest(random), random.nextInt(1 << 20), random.nextInt(10) == 0));
                }
            }
            encoded[d] = builder.build().encode();
        }
    }

    private static String name(Random random) {
        int length = 2 + random.nextInt(26);
        var s = new StringBuilder(length);
        for (int i = 0; i < length; i++) {
            s.append(NAME_CHARS.charAt(random.nextInt(NAME_CHARS.length())));
        }
        return s.toString();
    }

    private static B3Digest digest(Random random) {
        byte[] bytes = new byte[32];
        random.nextBytes(bytes);
        return B3Digest.wrap(bytes);
    }

    @Benchmark
    public Directory decode() {
        byte[] bytes = encoded[next];
        next = (next + 1) % DIRECTORIES;
        return Directory.decode(bytes);
    }
}
