package castore.hash;

import static org.assertj.core.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import castore.hash.Blake3.Engine;
import castore.hash.Blake3.Implementation;

/** The engines under test. Native is skipped where it is unavailable, except under CI=true, where that fails. */
final class Engines {
    static final boolean CI = "true".equals(System.getenv("CI"));

    private Engines() {
    }

    static Engine get(Implementation implementation) {
        var engine = Blake3.engine(implementation);
        if (engine.isEmpty()) {
            String why = "native BLAKE3 unavailable: " + Blake3.nativeProblem();
            if (CI) {
                fail(why + " (CI needs gcc and librust-blake3-dev at build time)");
            }
            assumeTrue(false, why);
        }
        return engine.get();
    }

    /** Input byte i is i % 251, as in the official test vectors. */
    static byte[] pattern(int length) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) (i % 251);
        }
        return b;
    }
}
