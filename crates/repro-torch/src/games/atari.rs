//! Atari 2600 games through the Arcade Learning Environment (ALE 0.6, vendored and compiled by the
//! `ale-sys` crate; GPL-2.0, hence the opt-in `atari` cargo feature), preprocessed as dopamine's
//! `AtariPreprocessing` (`dopamine/discrete_domains/atari_lib.py`) with its defaults:
//!
//! - sticky actions: ALE's `repeat_action_probability` = 0.25 (dopamine's `sticky_actions=True`,
//!   i.e. gym's `<Game>NoFrameskip-v0`);
//! - ALE's own frame skip left at 1; we repeat the agent's action `frame_skip` = 4 times, summing
//!   the rewards and stopping early on game over;
//! - observation: ALE's `getScreenGrayscale` of the last two of those frames, max-pooled, then
//!   resized 210×160 → 84×84 with OpenCV's INTER_AREA ([`super::screen`]); one 1×84×84 frame
//!   (stacking 4 is the agent's replay buffer's job);
//! - the minimal action set;
//! - terminal on game over only (dopamine's `terminal_on_life_loss=False`);
//! - at most `max_episode_steps` = 27,000 agent steps (dopamine's `max_steps_per_episode`, which
//!   its runner enforces): the step that reaches it reports [`Step::truncated`], not `terminal`,
//!   so the agent bootstraps from it as dopamine does; the caller resets.
//!
//! The game's ROM is verified against ALE's md5 list before ALE loads it ([`atari_roms`]).

use std::ffi::CString;
use std::path::Path;
use std::sync::Once;

use anyhow::{Context, Result, bail};

use super::env::{Env, Step};
use super::screen::{AreaResize, max_pool_into};
use repro_core::data::atari_roms;

/// ALE's screen, (height, width).
pub const SCREEN_HW: (usize, usize) = (210, 160);
/// The agent's frame side.
pub const FRAME_SIZE: usize = 84;

/// Dopamine's defaults; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtariConfig {
    pub repeat_action_probability: f32,
    pub frame_skip: usize,
    /// `None`: no limit.
    pub max_episode_steps: Option<usize>,
}

impl Default for AtariConfig {
    fn default() -> Self {
        AtariConfig {
            repeat_action_probability: 0.25,
            frame_skip: 4,
            max_episode_steps: Some(27_000),
        }
    }
}

/// One ALE instance playing one game.
pub struct AtariEnv {
    ale: *mut ale_sys::ALEInterface,
    game: &'static str,
    config: AtariConfig,
    actions: Vec<i32>,
    /// dopamine's `screen_buffer`: the last two raw grayscale frames of a step.
    screens: [Vec<u8>; 2],
    frame: Vec<u8>,
    resize: AreaResize,
    steps: usize,
}

// SAFETY: the ALE instance is owned by this value alone and only touched through `&mut self`
// (or `&self` reads that ALE does not mutate); moving it to another thread is fine.
unsafe impl Send for AtariEnv {}

/// ALE's `random_seed`: 0 means "seed from the clock", so seeds map to 1..=i32::MAX.
pub fn ale_seed(seed: u64) -> i32 {
    (seed % (i32::MAX as u64)) as i32 + 1
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in ALE setting names")
}

impl AtariEnv {
    /// Load `game` (dopamine's name, e.g. `Pong`, `SpaceInvaders`) from the ROM folder `roms`
    /// (the extracted `atari-roms` dataset, or a folder of `.bin` files), seeded with `seed`,
    /// and reset it.
    pub fn new(game: &str, roms: &Path, seed: u64, config: AtariConfig) -> Result<Self> {
        let rom = atari_roms::rom(game)?;
        // Verified before ALE sees it: ALE exits the process on a missing file and picks the
        // game's rules from the file name.
        let path = atari_roms::find_rom(roms, game)?;
        if config.frame_skip == 0 {
            bail!("frame_skip must be at least 1");
        }
        let path_c = CString::new(
            path.to_str()
                .with_context(|| format!("ROM path {} is not UTF-8", path.display()))?,
        )
        .context("ROM path holds a NUL byte")?;
        static QUIET: Once = Once::new();
        // SAFETY: plain FFI calls on an instance we just created and own.
        let (ale, actions) = unsafe {
            QUIET.call_once(|| ale_sys::setLoggerMode(2)); // errors only
            let ale = ale_sys::ALE_new();
            if ale.is_null() {
                bail!("ALE_new failed");
            }
            ale_sys::setInt(ale, cstr("random_seed").as_ptr(), ale_seed(seed));
            ale_sys::setFloat(
                ale,
                cstr("repeat_action_probability").as_ptr(),
                config.repeat_action_probability,
            );
            ale_sys::setInt(ale, cstr("frame_skip").as_ptr(), 1);
            ale_sys::setBool(ale, cstr("color_averaging").as_ptr(), false);
            ale_sys::loadROM(ale, path_c.as_ptr());
            let (h, w) = (ale_sys::getScreenHeight(ale), ale_sys::getScreenWidth(ale));
            if (h as usize, w as usize) != SCREEN_HW {
                ale_sys::ALE_del(ale);
                bail!("ALE's screen is {h}×{w}, expected 210×160");
            }
            let n = ale_sys::getMinimalActionSize(ale).max(0) as usize;
            let mut actions = vec![0i32; n];
            ale_sys::getMinimalActionSet(ale, actions.as_mut_ptr());
            (ale, actions)
        };
        let mut env = AtariEnv {
            ale,
            game: rom.game,
            config,
            actions,
            screens: [
                vec![0; SCREEN_HW.0 * SCREEN_HW.1],
                vec![0; SCREEN_HW.0 * SCREEN_HW.1],
            ],
            frame: vec![0; FRAME_SIZE * FRAME_SIZE],
            resize: AreaResize::new(SCREEN_HW, (FRAME_SIZE, FRAME_SIZE)),
            steps: 0,
        };
        env.reset();
        Ok(env)
    }

    /// Dopamine's name of the game.
    pub fn game(&self) -> &'static str {
        self.game
    }

    pub fn config(&self) -> &AtariConfig {
        &self.config
    }

    /// ALE's action codes of the minimal action set, indexed by the agent's action.
    pub fn ale_actions(&self) -> &[i32] {
        &self.actions
    }

    /// Agent steps taken in this episode.
    pub fn episode_steps(&self) -> usize {
        self.steps
    }

    /// Lives left, as ALE reports them.
    pub fn lives(&self) -> i32 {
        // SAFETY: read-only query on our instance.
        unsafe { ale_sys::lives(self.ale) }
    }

    fn grab(&mut self, slot: usize) {
        // SAFETY: the buffer holds exactly 210·160 bytes, what getScreenGrayscale writes.
        unsafe { ale_sys::getScreenGrayscale(self.ale, self.screens[slot].as_mut_ptr()) }
    }

    /// dopamine's `_pool_and_resize` (pools into `screen_buffer[0]` in place, as it does).
    fn pool_and_resize(&mut self) {
        if self.config.frame_skip > 1 {
            let [a, b] = &mut self.screens;
            max_pool_into(a, b);
        }
        self.resize.apply(&self.screens[0], &mut self.frame);
    }
}

impl Env for AtariEnv {
    fn frame_shape(&self) -> [usize; 3] {
        [1, FRAME_SIZE, FRAME_SIZE]
    }

    fn num_actions(&self) -> usize {
        self.actions.len()
    }

    fn reset(&mut self) {
        // SAFETY: FFI on our instance.
        unsafe { ale_sys::reset_game(self.ale) };
        self.steps = 0;
        self.grab(0);
        self.screens[1].fill(0);
        self.pool_and_resize();
    }

    fn step(&mut self, action: usize) -> Step {
        let code = self.actions[action];
        let skip = self.config.frame_skip;
        let mut reward = 0.0f32;
        let mut terminal = false;
        for t in 0..skip {
            // SAFETY: FFI on our instance; `code` is one of ALE's own minimal actions.
            let (r, over) = unsafe {
                let r = ale_sys::act(self.ale, code);
                (r, ale_sys::game_over(self.ale))
            };
            reward += r as f32;
            terminal = over;
            // dopamine fetches the last two frames into screen_buffer[0] and [1]; with no frame
            // skip (where it would leave [0] stale) the one frame goes to [0].
            if t + 2 >= skip {
                self.grab((t + 2 - skip).min(skip - 1));
            }
            if terminal {
                break;
            }
        }
        self.pool_and_resize();
        self.steps += 1;
        let truncated = !terminal
            && self
                .config
                .max_episode_steps
                .is_some_and(|m| self.steps >= m);
        Step {
            reward,
            terminal,
            truncated,
        }
    }

    fn frame(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.frame);
    }
}

impl Drop for AtariEnv {
    fn drop(&mut self) {
        // SAFETY: created by ALE_new in `new`, deleted once here.
        unsafe { ale_sys::ALE_del(self.ale) }
    }
}
