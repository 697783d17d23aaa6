package castore.fs;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import org.junit.jupiter.api.Test;

class FetchLatencyTest {
    @Test
    void oneSlowAccessSwitchesHandOffsOnAndARunOfFastOnesOff() throws Exception {
        var latency = new FetchLatency();
        assertThat(latency.slow()).as("nothing timed yet").isFalse();
        assertThat(latency.time(() -> "fast")).isEqualTo("fast"); // in a cold JVM even this may take long: no check
        assertThatThrownBy(() -> latency.time(() -> {
            Thread.sleep(java.time.Duration.ofNanos(20 * FetchLatency.SLOW_NANOS)); // at least this long, unlike a park
            throw new IOException("timed out");
        })).hasMessage("timed out");
        assertThat(latency.slow()).as("failures count").isTrue();
        for (int i = 0; i < 200 && latency.slow(); i++) { // ~8 after 2 ms; more if a busy machine stretched the sleep
            latency.time(() -> null);
        }
        assertThat(latency.slow()).isFalse();
    }
}
