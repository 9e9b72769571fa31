//! Capacity-planning reports. Planned: see issue "Capacity-planning reports".
