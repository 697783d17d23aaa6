package castore.fuse.abi;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static castore.fuse.abi.Wire.i32;
import static castore.fuse.abi.Wire.u16;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** INIT negotiation against the offer seen from Linux 6.18 (protocol 7.45). */
class InitTest {
    /** flags | flags2 << 32 as the 6.18 kernel sent them (see fuse-protocol-notes.md). */
    private static final long KERNEL_6_18 = 0x5fd73fffffbL;
    private static final Init.Limits ONE_MIB = new Init.Limits(InitFlags.WANTED, 1 << 20, 4096, 64);

    private static byte[] initIn(int major, int minor, int readahead, long flags, int size) {
        byte[] in = new byte[64];
        Wire.putI32(in, 0, major);
        Wire.putI32(in, 4, minor);
        Wire.putI32(in, 8, readahead);
        Wire.putI32(in, 12, (int) flags);
        Wire.putI32(in, 16, (int) (flags >>> 32));
        return Arrays.copyOf(in, size);
    }

    @Test
    void decodesFlags2OnlyWithInitExt() {
        Init.Offer offer = Init.Offer.decode(initIn(7, 45, 131072, KERNEL_6_18, 64), 0, 64);
        assertThat(offer.flags()).isEqualTo(KERNEL_6_18);
        assertThat(offer.flags() & InitFlags.PASSTHROUGH).isNotZero();
        long withoutExt = KERNEL_6_18 & ~InitFlags.INIT_EXT;
        Init.Offer old = Init.Offer.decode(initIn(7, 45, 131072, withoutExt, 64), 0, 64);
        assertThat(old.flags()).isEqualTo(withoutExt & 0xffff_ffffL);
    }

    @Test
    void decodesThe16ByteInitInOfOlderKernels() {
        Init.Offer offer = Init.Offer.decode(initIn(7, 31, 65536, InitFlags.ASYNC_READ, 16), 0, 16);
        assertThat(offer).isEqualTo(new Init.Offer(7, 31, 65536, InitFlags.ASYNC_READ));
    }

    @Test
    void answersWithWhatAnImmutableFilesystemWantsAndNothingElse() {
        Init.Offer offer = new Init.Offer(7, 45, 131072, KERNEL_6_18);
        Init.Answer a = Init.negotiate(offer, ONE_MIB);
        assertThat(a.major()).isEqualTo(7);
        assertThat(a.minor()).isEqualTo(45);
        assertThat(a.flags()).isEqualTo(InitFlags.ASYNC_READ | InitFlags.BIG_WRITES | InitFlags.MAX_PAGES
                | InitFlags.DO_READDIRPLUS | InitFlags.READDIRPLUS_AUTO | InitFlags.PARALLEL_DIROPS
                | InitFlags.CACHE_SYMLINKS | InitFlags.INIT_EXT);
        assertThat(a.flags() & InitFlags.WRITEBACK_CACHE).isZero();
        assertThat(a.maxReadahead()).isEqualTo(131072);
        assertThat(a.maxPages()).isEqualTo(256);
        assertThat(a.maxWrite()).isEqualTo(1 << 20);
        assertThat(a.timeGran()).isEqualTo(1);
        assertThat(a.maxBackground()).isEqualTo(64);
        assertThat(a.congestionThreshold()).isEqualTo(48);
    }

    @Test
    void newerKernelsGetOurMinorOlderOnesTheirOwn() {
        assertThat(Init.negotiate(new Init.Offer(7, 99, 0, KERNEL_6_18), ONE_MIB).minor()).isEqualTo(Init.MINOR);
        assertThat(Init.negotiate(new Init.Offer(7, 31, 0, InitFlags.ASYNC_READ), ONE_MIB).minor()).isEqualTo(31);
    }

    @Test
    void flagsTheKernelDoesNotOfferAreNotClaimed() {
        Init.Answer a = Init.negotiate(new Init.Offer(7, 31, 4096, InitFlags.ASYNC_READ | InitFlags.MAX_PAGES), ONE_MIB);
        assertThat(a.flags()).isEqualTo(InitFlags.ASYNC_READ | InitFlags.MAX_PAGES);
    }

    @Test
    void tooOldOrForeignProtocolsAreRefused() {
        assertThatThrownBy(() -> Init.negotiate(new Init.Offer(7, 22, 0, 0), ONE_MIB))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("7.22");
        assertThatThrownBy(() -> Init.negotiate(new Init.Offer(8, 0, 0, 0), ONE_MIB))
                .isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void encodesThe64ByteInitOutWithHighFlagsInFlags2() {
        byte[] bytes = new byte[64];
        Arrays.fill(bytes, (byte) 0x5a);
        byte[] out = bytes;
        Init.Answer a = new Init.Answer(7, 45, 131072, InitFlags.ASYNC_READ | InitFlags.INIT_EXT | InitFlags.PASSTHROUGH,
                64, 48, 1 << 20, 1, 256, 1);
        assertThat(a.encode(out, 0)).isEqualTo(64);
        assertThat(i32(out, 0)).isEqualTo(7);
        assertThat(i32(out, 4)).isEqualTo(45);
        assertThat(i32(out, 8)).isEqualTo(131072);
        assertThat(i32(out, 12)).isEqualTo((int) (InitFlags.ASYNC_READ | InitFlags.INIT_EXT));
        assertThat(u16(out, 16)).isEqualTo(64);
        assertThat(u16(out, 18)).isEqualTo(48);
        assertThat(i32(out, 20)).isEqualTo(1 << 20);
        assertThat(i32(out, 24)).isEqualTo(1);
        assertThat(u16(out, 28)).isEqualTo(256);
        assertThat(u16(out, 30)).isZero();
        assertThat(i32(out, 32)).isEqualTo(1 << 5); // PASSTHROUGH is bit 37
        assertThat(i32(out, 36)).isEqualTo(1); // max_stack_depth
        for (int off = 40; off < 64; off += 4) {
            assertThat(i32(out, off)).as("offset %d", off).isZero();
        }
    }

    @Test
    void passthroughIsNegotiatedOnlyWhenWantedAndOfferedAndThenSetsAStackDepthOfOne() {
        long kernel = InitFlags.ASYNC_READ | InitFlags.INIT_EXT | InitFlags.PASSTHROUGH;
        var wanted = new Init.Limits(InitFlags.WANTED | InitFlags.PASSTHROUGH, 1 << 20, 4096, 64);
        Init.Answer both = Init.negotiate(new Init.Offer(7, 45, 131072, kernel), wanted);
        assertThat(both.flags() & InitFlags.PASSTHROUGH).isNotZero();
        assertThat(both.maxStackDepth()).isEqualTo(1);

        Init.Answer notWanted = Init.negotiate(new Init.Offer(7, 45, 131072, kernel), ONE_MIB);
        assertThat(notWanted.flags() & InitFlags.PASSTHROUGH).isZero();
        assertThat(notWanted.maxStackDepth()).isZero();

        Init.Answer notOffered = Init.negotiate(new Init.Offer(7, 45, 131072, kernel & ~InitFlags.PASSTHROUGH), wanted);
        assertThat(notOffered.flags() & InitFlags.PASSTHROUGH).isZero();
        assertThat(notOffered.maxStackDepth()).isZero();
    }

    @Test
    void describesFlagsByName() {
        assertThat(InitFlags.describe(InitFlags.ASYNC_READ | InitFlags.PASSTHROUGH | (1L << 60)))
                .isEqualTo("ASYNC_READ|PASSTHROUGH|BIT_60");
        assertThat(InitFlags.describe(0)).isEqualTo("0");
    }
}
