package castore.cli;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/** The error suite on the embedded local store. */
class LocalErrorsTest extends ErrorsTest {
    @Override
    String storeAddress() {
        return tmp.resolve("store").toString();
    }

    @Override
    @Test
    void gcNeedsAStoreThatSupportsIt() {
        Cli.Result r = cli.run("gc");
        assertThat(r.exit()).as(r.stderr()).isZero();
    }
}
