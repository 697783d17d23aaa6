package castore.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * What some Java forms cost in a JVM that has just started, as a mount's first requests see them
 * (docs/performance.md, "the request path in a fresh JVM"). Not JMH: the point is the first calls,
 * before and while the JIT compiles, so each measurement is one fresh JVM and one timed loop.
 *
 * <pre>
 * ./mvnw -B -q -pl bench -am package -DskipTests
 * for m in segment vararray record written switch instanceof; do for n in 10000 3000000; do
 *   taskset -c 0 $JAVA_HOME/bin/java -XX:TieredStopAtLevel=1 --enable-native-access=ALL-UNNAMED \
 *     -cp bench/target/classes castore.bench.FreshJvmCosts $m $n; done; done
 * </pre>
 *
 * Modes: {@code segment} / {@code vararray} encode a 16-field record (6 longs, 10 ints) into a
 * MemorySegment with ValueLayout accessors / into a byte[] through byte-array VarHandles;
 * {@code record} / {@code written} call hashCode and equals on a record with generated / written
 * out methods; {@code switch} / {@code instanceof} tell three sealed kinds apart with a pattern
 * switch (its invokedynamic bootstrap already done once elsewhere) / with instanceof.
 */
public final class FreshJvmCosts {
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED;
    private static final VarHandle LONG_OF_ARRAY = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.nativeOrder());
    private static final VarHandle INT_OF_ARRAY = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.nativeOrder());

    private FreshJvmCosts() {
    }

    record Generated(Object digest, long size, boolean executable) {
    }

    record Written(Object digest, long size, boolean executable) {
        @Override
        public boolean equals(Object o) {
            return o instanceof Written w && w.size == size && w.executable == executable && w.digest.equals(digest);
        }

        @Override
        public int hashCode() {
            return (digest.hashCode() * 31 + Long.hashCode(size)) * 31 + Boolean.hashCode(executable);
        }
    }

    sealed interface Kind permits A, B, C {
    }

    record A(long v) implements Kind {
    }

    record B(long v) implements Kind {
    }

    record C(long v) implements Kind {
    }

    public static void main(String[] args) {
        if (args.length != 2) {
            System.err.println("usage: FreshJvmCosts segment|vararray|record|written|switch|instanceof N");
            System.exit(2);
        }
        String mode = args[0];
        int n = Integer.parseInt(args[1]);
        MemorySegment segment = Arena.global().allocate(4096);
        byte[] array = new byte[4096];
        Object[] digests = new Object[64];
        for (int i = 0; i < digests.length; i++) {
            digests[i] = "digest" + i;
        }
        Kind[] kinds = {new A(1), new B(2), new C(3), new A(4)};
        long sum = 0;
        if (mode.equals("switch")) {
            for (int i = 0; i < 10_000; i++) {
                sum += otherSwitch(kinds[i & 3]); // links the switch machinery once, as startup would
            }
        }
        long start = System.nanoTime();
        for (int i = 0; i < n; i++) {
            switch (mode) {
                case "segment" -> encode(segment, (i & 31) * 100, i);
                case "vararray" -> encode(array, (i & 31) * 100, i);
                case "record" -> {
                    Object a = new Generated(digests[i & 63], i, true);
                    sum += a.hashCode() + (a.equals(new Generated(digests[i & 63], i, true)) ? 1 : 0);
                }
                case "written" -> {
                    Object a = new Written(digests[i & 63], i, true);
                    sum += a.hashCode() + (a.equals(new Written(digests[i & 63], i, true)) ? 1 : 0);
                }
                case "switch" -> sum += bySwitch(kinds[i & 3]);
                case "instanceof" -> sum += byInstanceof(kinds[i & 3]);
                default -> throw new IllegalArgumentException("unknown mode " + mode);
            }
        }
        long elapsed = System.nanoTime() - start;
        System.out.printf("%s n=%d: %d us total, %d ns per operation (%d)%n", mode, n, elapsed / 1000, elapsed / n, sum);
    }

    private static void encode(MemorySegment s, long at, long v) {
        for (int k = 0; k < 6; k++) {
            s.set(LONG, at + 8 * k, v + k);
        }
        for (int k = 0; k < 10; k++) {
            s.set(INT, at + 48 + 4 * k, (int) v + k);
        }
    }

    private static void encode(byte[] b, int at, long v) {
        for (int k = 0; k < 6; k++) {
            LONG_OF_ARRAY.set(b, at + 8 * k, v + k);
        }
        for (int k = 0; k < 10; k++) {
            INT_OF_ARRAY.set(b, at + 48 + 4 * k, (int) v + k);
        }
    }

    private static long bySwitch(Kind k) {
        return switch (k) {
            case A a -> a.v();
            case B b -> b.v() * 2;
            case C c -> c.v() * 3;
        };
    }

    private static long otherSwitch(Kind k) {
        return switch (k) {
            case A a -> a.v() + 1;
            case B b -> b.v() * 5;
            case C c -> c.v() * 7;
        };
    }

    private static long byInstanceof(Kind k) {
        if (k instanceof A a) {
            return a.v();
        }
        if (k instanceof B b) {
            return b.v() * 2;
        }
        return ((C) k).v() * 3;
    }
}
