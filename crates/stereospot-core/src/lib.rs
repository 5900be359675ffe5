//! StereoSpot core
